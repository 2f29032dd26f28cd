// The rows of a packed variable-length tensor that no sequence computes: rows past seqused[b]
// within sequence b, and the rows after the last sequence. They get the CPU backend's result
// for a row with nothing to attend to: output (and gradient) 0, LSE -inf. One launch per
// tensor; block row y = b < batch clears sequence b's unused rows, y = batch the tail. With no
// seqused and a tail of zero rows every block exits at once.
#include "common/types.cuh"

extern "C" __global__ void __launch_bounds__(256)
flash_varlen_clear(const __grid_constant__ FAVarlenClearParams params) {
  u16* __restrict__ tensor = params.tensor;
  float* __restrict__ lse = params.lse;
  const fa_i32* __restrict__ cu = params.cu_seqlens;
  const int b = blockIdx.y;
  int first, end;
  if (b < params.batch) {
    if (!params.seqused) return;
    const int start = cu[b];
    const int length = max(0, cu[b + 1] - start);
    first = start + min(max(params.seqused[b], 0), length);
    end = start + length;
  } else {
    first = cu[params.batch];
    end = params.total;
  }
  first = max(first, 0);
  end = min(end, params.total);
  if (first >= end) return;
  const int heads = params.heads, width = params.width;
  const i64 count = (i64)(end - first) * heads * width;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x) {
    const int c = (int)(i % width);
    const i64 rest = i / width;
    const int h = (int)(rest % heads);
    const int row = first + (int)(rest / heads);
    tensor[(i64)row * params.row_stride + h * params.head_stride + c] = 0;
    if (lse && c == 0) lse[h * params.lse_head_stride + row] = -FA_INF;
  }
}
