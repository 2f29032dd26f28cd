// The split-KV merge of the decode kernel: each row's splits hold a normalized O_s and its LSE
// lse_s over a disjoint run of keys, so the row over all of them is exactly
//
//   lse = m + log(sum_s exp(lse_s - m))   and   O = sum_s exp(lse_s - lse) O_s,   m = max_s lse_s
//
// A split without a visible key has lse_s = -inf and weight 0; a row with none anywhere gets
// O = 0 and LSE = -inf. One warp per row (batch, query head, query token): the lanes take the
// splits for the weights, then 4 columns each. FA_DV and FA_BF16 come from the host.
#include "common/softmax.cuh"

#define WARPS_PER_BLOCK 4

extern "C" __global__ void __launch_bounds__(WARPS_PER_BLOCK * 32)
flash_decode_combine(const __grid_constant__ FADecodeCombineParams params) {
  const float* __restrict__ o_partial = params.o_partial;
  const float* __restrict__ lse_partial = params.lse_partial;
  const int lane = threadIdx.x % 32;
  const i64 rows_total = (i64)params.batch * params.heads_q * params.seqlen_q;
  const i64 row = (i64)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / 32;
  if (row >= rows_total) return;
  const int splits = params.num_splits;

  // The largest split LSE, and the sum of the weights relative to it (natural log via log2).
  float m = -FA_INF;
  for (int s = lane; s < splits; s += 32) m = fmaxf(m, lse_partial[s * rows_total + row]);
  #pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, offset));
  const float base = m == -FA_INF ? 0.f : m * FA_LOG2E;
  float total = 0.f;
  for (int s = lane; s < splits; s += 32) total += ex2(lse_partial[s * rows_total + row] * FA_LOG2E - base);
  #pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffff, total, offset);
  // Tests `== 0`, never `> 0`: a NaN split (a NaN in Q, K or V) makes the row NaN, as in a
  // standard attention, instead of an empty row.
  const float inv = inverse_sum(total);

  const int token = (int)(row % params.seqlen_q);
  const int head = (int)((row / params.seqlen_q) % params.heads_q);
  const int b = (int)(row / ((i64)params.seqlen_q * params.heads_q));
  u16* __restrict__ out = params.o;
  u16* out_row = out + b * params.o_strides.batch + token * params.o_strides.row + head * params.o_strides.head;
#if FA_DV <= 128
  // Lane s % 32 computes split s's weight (the same expression every lane used to), and the
  // split loop reads it with a shuffle: the loads of the splits' O no longer wait on a load of
  // their LSE, and the unrolled loop keeps several in flight instead of one L2 round trip per
  // split. The sum runs over the splits in the same order, so O is bit-identical. Every lane runs
  // every iteration (the shuffles need the whole warp); lanes past d_v load and store nothing.
  const i64 split_stride = rows_total * FA_DV;  // floats from one split's O to the next
  for (int c0 = 0; c0 < FA_DV; c0 += 128) {
    const int col = c0 + lane * 4;
    const bool active = col < FA_DV;
    float o[4] = {0.f, 0.f, 0.f, 0.f};
    for (int s0 = 0; s0 < splits; s0 += 32) {
      const int mine = s0 + lane;
      const float my_weight = mine < splits ? ex2(lse_partial[mine * rows_total + row] * FA_LOG2E - base) * inv : 0.f;
      const int count = min(32, splits - s0);
      const float* first = o_partial + (s0 * rows_total + row) * FA_DV + col;  // split s0's O, this lane's columns
      #pragma unroll 4
      for (int j = 0; j < count; ++j) {
        const float weight = __shfl_sync(0xffffffff, my_weight, j);
        // The load does not wait on the weight (decode.cu writes every split's O, empty ones
        // too); the sum still skips zero weights, as before: an underflowed split whose O is
        // inf adds nothing rather than 0 × inf = NaN.
        float4 part = make_float4(0.f, 0.f, 0.f, 0.f);
        if (active) part = *reinterpret_cast<const float4*>(first + j * split_stride);
        if (weight != 0.f) {
          o[0] += weight * part.x; o[1] += weight * part.y; o[2] += weight * part.z; o[3] += weight * part.w;
        }
      }
    }
    if (active) *reinterpret_cast<uint2*>(out_row + col) = make_uint2(pack2(o[0], o[1]), pack2(o[2], o[3]));
  }
#else
  // d_v > 128 keeps the one-split-at-a-time loop: the version above spills 16 B there on sm_80.
  for (int col = lane * 4; col < FA_DV; col += 128) {
    float o[4] = {0.f, 0.f, 0.f, 0.f};
    for (int s = 0; s < splits; ++s) {
      const float weight = ex2(lse_partial[s * rows_total + row] * FA_LOG2E - base) * inv;
      if (weight != 0.f) {  // skips the -inf splits (no visible key), whose O is 0 anyway
        const float4 part = *reinterpret_cast<const float4*>(o_partial + (s * rows_total + row) * FA_DV + col);
        o[0] += weight * part.x; o[1] += weight * part.y; o[2] += weight * part.z; o[3] += weight * part.w;
      }
    }
    *reinterpret_cast<uint2*>(out_row + col) = make_uint2(pack2(o[0], o[1]), pack2(o[2], o[3]));
  }
#endif
  if (lane == 0) {
    float* __restrict__ lse = params.lse;
    lse[b * params.lse_strides.batch + head * params.lse_strides.head + token] = total == 0.f ? -FA_INF : m + lg2(total) * FA_LN2;
  }
}
