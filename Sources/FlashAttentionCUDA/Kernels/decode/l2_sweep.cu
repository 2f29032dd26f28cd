// A read-only sweep of a buffer larger than the L2, for the decode benchmark's clean flush
// (`bench --grid decode --decode-flush clean`): run after the memset that evicts the decode's
// data, it evicts the memset's dirty lines in turn (their write-back happens here, before the
// timed run), leaving the L2 full of clean lines of this buffer, which the decode's reads
// replace without writing anything back. The loaded words are folded into one value that is
// stored only under a condition no launch meets (a negative count): without a use, ptxas drops
// the loads (asm volatile keeps them in the PTX only). The kernel writes nothing.
#include "common/types.cuh"

extern "C" __global__ void __launch_bounds__(256) l2_sweep(const __grid_constant__ FAL2SweepParams params) {
  const fa_u64* data = params.data;
  const i64 stride = (i64)gridDim.x * blockDim.x;
  u32 fold = 0;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < params.count; i += stride) {
    u32 a, b, c, d;
    asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(data + 2 * i));
    fold ^= a ^ b ^ c ^ d;
  }
  if (params.count < 0) *reinterpret_cast<u32*>(const_cast<fa_u64*>(data)) = fold;
}
