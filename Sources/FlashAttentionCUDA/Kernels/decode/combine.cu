// The split-KV merge of the decode kernel as a kernel of its own (`--decode-combine separate`):
// one warp per row (batch, query head, query token), the arithmetic of decode/merge.cuh (which
// the fused route, decode.cu with `split_counters`, runs too). FA_DV and FA_BF16 come from the
// host.
#include "decode/merge.cuh"

#define WARPS_PER_BLOCK 4

extern "C" __global__ void __launch_bounds__(WARPS_PER_BLOCK * 32)
flash_decode_combine(const __grid_constant__ FADecodeCombineParams params) {
  const float* __restrict__ o_partial = params.o_partial;
  const float* __restrict__ lse_partial = params.lse_partial;
  const int lane = threadIdx.x % 32;
  const i64 rows_total = (i64)params.batch * params.heads_q * params.seqlen_q;
  const i64 row = (i64)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
  if (row >= rows_total) return;

  const int token = (int)(row % params.seqlen_q);
  const int head = (int)((row / params.seqlen_q) % params.heads_q);
  const int b = (int)(row / ((i64)params.seqlen_q * params.heads_q));
  u16* __restrict__ out = params.o;
  u16* out_row = out + b * params.o_strides.batch + token * params.o_strides.row + head * params.o_strides.head;
  const float row_lse = merge_split_row<false>(o_partial, lse_partial, rows_total, row, params.num_splits, lane, out_row);
  if (lane == 0) {
    float* __restrict__ lse = params.lse;
    lse[b * params.lse_strides.batch + head * params.lse_strides.head + token] = row_lse;
  }
}
