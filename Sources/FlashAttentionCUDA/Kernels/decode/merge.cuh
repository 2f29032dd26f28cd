// The split-KV merge of one row, shared by the merge kernel (decode/combine.cu) and the merge
// that the last split CTA of a row block runs inside decode.cu (`split_counters`): one copy of
// the arithmetic, so the two routes give the same bits. Each of a row's splits holds a
// normalized O_s and its LSE lse_s over a disjoint run of keys, so the row over all of them is
// exactly
//
//   lse = m + log(sum_s exp(lse_s - m))   and   O = sum_s exp(lse_s - lse) O_s,   m = max_s lse_s
//
// A split without a visible key has lse_s = -inf and weight 0; a row with none anywhere gets
// O = 0 and LSE = -inf. One warp per row: the lanes take the splits for the weights, then 4
// columns each. FA_DV and FA_BF16 come from the host.
//
// COHERENT (the merge inside decode.cu) reads the partials with ld.global.cg behind `asm
// volatile`: they were written by other CTAs of the same launch, so no load may come from a
// non-coherent path (ld.global.nc, which a `const __restrict__` pointer invites), from a line
// this SM's L1 kept of a neighbouring row block's earlier merge, or be hoisted above the ticket
// that says the partials are there. The merge kernel (a later launch) keeps plain loads.
#pragma once
#include "common/softmax.cuh"

template <bool COHERENT>
__device__ __forceinline__ float merge_load(const float* p) {
  if (COHERENT) {
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p));
    return v;
  }
  return *p;
}

template <bool COHERENT>
__device__ __forceinline__ float4 merge_load4(const float* p) {
  if (COHERENT) {
    float4 v;
    asm volatile("ld.global.cg.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
  }
  return *reinterpret_cast<const float4*>(p);
}

// Row `row` of the partials (`o_partial` [splits, rows_total, FA_DV], `lse_partial` [splits,
// rows_total], fp32) merged into `out_row` (FA_DV 16-bit values); returns the row's LSE (the
// same on every lane), which the caller stores (its address computed after the loop keeps a
// pointer pair out of the loop's registers: the merge kernel spilled 8 bytes at d_v 128 with it
// passed in). Called by a whole warp (the shuffles need every lane); `lane` is the caller's lane.
template <bool COHERENT>
__device__ __forceinline__ float merge_split_row(
  const float* o_partial, const float* lse_partial, i64 rows_total, i64 row, int splits, int lane, u16* out_row) {
  // The largest split LSE, and the sum of the weights relative to it (natural log via log2).
  float m = -FA_INF;
  for (int s = lane; s < splits; s += 32) m = fmaxf(m, merge_load<COHERENT>(lse_partial + s * rows_total + row));
  #pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, offset));
  const float base = m == -FA_INF ? 0.f : m * FA_LOG2E;
  float total = 0.f;
  for (int s = lane; s < splits; s += 32) total += ex2(merge_load<COHERENT>(lse_partial + s * rows_total + row) * FA_LOG2E - base);
  #pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffff, total, offset);
  // Tests `== 0`, never `> 0`: a NaN split (a NaN in Q, K or V) makes the row NaN, as in a
  // standard attention, instead of an empty row.
  const float inv = inverse_sum(total);

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
      const float my_weight =
        mine < splits ? ex2(merge_load<COHERENT>(lse_partial + mine * rows_total + row) * FA_LOG2E - base) * inv : 0.f;
      const int count = min(32, splits - s0);
      const float* first = o_partial + (s0 * rows_total + row) * FA_DV + col;  // split s0's O, this lane's columns
      #pragma unroll 4
      for (int j = 0; j < count; ++j) {
        const float weight = __shfl_sync(0xffffffff, my_weight, j);
        // The load does not wait on the weight (decode.cu writes every split's O, empty ones
        // too); the sum still skips zero weights, as before: an underflowed split whose O is
        // inf adds nothing rather than 0 × inf = NaN.
        float4 part = make_float4(0.f, 0.f, 0.f, 0.f);
        if (active) part = merge_load4<COHERENT>(first + j * split_stride);
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
      const float weight = ex2(merge_load<COHERENT>(lse_partial + s * rows_total + row) * FA_LOG2E - base) * inv;
      if (weight != 0.f) {  // skips the -inf splits (no visible key), whose O is 0 anyway
        const float4 part = merge_load4<COHERENT>(o_partial + (s * rows_total + row) * FA_DV + col);
        o[0] += weight * part.x; o[1] += weight * part.y; o[2] += weight * part.z; o[3] += weight * part.w;
      }
    }
    *reinterpret_cast<uint2*>(out_row + col) = make_uint2(pack2(o[0], o[1]), pack2(o[2], o[3]));
  }
#endif
  return total == 0.f ? -FA_INF : m + lg2(total) * FA_LN2;
}
