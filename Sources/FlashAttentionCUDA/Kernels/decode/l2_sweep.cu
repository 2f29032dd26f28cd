// A read-only sweep of a buffer, two uses in the decode benchmark:
// - the clean flush (`bench --grid decode --decode-flush clean`): run after the memset that
//   evicts the decode's data, over a buffer larger than the L2, it evicts the memset's dirty
//   lines in turn (their write-back happens here, before the timed run), leaving the L2 full of
//   clean lines of this buffer, which the decode's reads replace without writing anything back;
// - the read floor (`--decode-read-floor`): timed like the decode over a buffer of the decode's
//   own K and V bytes, the time of one launch that does nothing but read them.
// Each thread keeps four 16-byte loads in flight (one per grid stride), so the grid has a few
// MB outstanding, what the DRAM needs at full rate. The loaded words are folded into one value
// that is stored only under a condition no launch meets (a negative count): without a use,
// ptxas drops the loads (asm volatile keeps them in the PTX only). The kernel writes nothing.
#include "common/types.cuh"

__device__ __forceinline__ u32 load_cg_fold(const fa_u64* p) {
  u32 a, b, c, d;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(p));
  return a ^ b ^ c ^ d;
}

extern "C" __global__ void __launch_bounds__(256) l2_sweep(const __grid_constant__ FAL2SweepParams params) {
  const fa_u64* data = params.data;
  const i64 stride = (i64)gridDim.x * blockDim.x;
  u32 fold = 0;
  i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < params.count; i += 4 * stride) {
    const u32 x0 = load_cg_fold(data + 2 * i), x1 = load_cg_fold(data + 2 * (i + stride));
    const u32 x2 = load_cg_fold(data + 2 * (i + 2 * stride)), x3 = load_cg_fold(data + 2 * (i + 3 * stride));
    fold ^= x0 ^ x1 ^ x2 ^ x3;
  }
  for (; i < params.count; i += stride) fold ^= load_cg_fold(data + 2 * i);
  if (params.count < 0) *reinterpret_cast<u32*>(const_cast<fa_u64*>(data)) = fold;
}
