// The online softmax's step over one key tile in the m16n8 accumulator layout, shared by the
// FlashAttention-2 forward and the KV-cache decode kernel: a thread holds rows 16 mt + 8 half
// (+ lane / 4) of S (`s`, NS 8-key chunks) and of O (`o`, NO 8-column chunks), and each row's
// running max (times c), raw max, and partial sum. P replaces S in place; O and the sums are
// rescaled. The rows' tile maxima come first, so that one branch picks the exponent form for all
// of the thread's rows: a branch per row inside the loop cost the d = 64 forward 10 % (H100,
// 2026-12-06). EXACT (a row's |max·c| >= EXACT_EXPONENT_FROM): 2^((s - max)·c), the max's p
// exactly 1 (common/softmax.cuh).
#pragma once
#include "common/softmax.cuh"
#include "sm80/ptx.cuh"

template <bool EXACT, int MT, int NS, int NO>
__device__ __forceinline__ void online_softmax_rows(
  float (&s)[MT][NS][4], float (&o)[MT][NO][4], float (&row_max)[MT][2], float (&raw_max)[MT][2],
  float (&row_sum)[MT][2], const float (&tile)[MT][2], float c) {
  #pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    #pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float next = next_max<false>(row_max[mt][half], tile[mt][half] * c);
      const float base = exponent_offset(next);
      const float corr = rescale_factor(row_max[mt][half], next);
      row_max[mt][half] = next;
      raw_max[mt][half] = fmaxf(raw_max[mt][half], tile[mt][half]);  // x -> fp32(x·c) is monotone
      // The raw max of a row with no visible key yet is -inf; subtracting 0 keeps its p at 0.
      const float r = raw_exponent_offset(raw_max[mt][half]);
      float sum = 0.f;
      #pragma unroll
      for (int i = 0; i < NS; ++i)
        #pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float x = s[mt][i][half * 2 + e];
          const float p = EXACT ? ex2((x - r) * c) : ex2(x * c - base);
          s[mt][i][half * 2 + e] = p;
          sum += p;
        }
      row_sum[mt][half] = row_sum[mt][half] * corr + sum;
      #pragma unroll
      for (int i = 0; i < NO; ++i) { o[mt][i][half * 2] *= corr; o[mt][i][half * 2 + 1] *= corr; }
    }
}

template <int MT, int NS, int NO>
__device__ __forceinline__ void online_softmax_step(
  float (&s)[MT][NS][4], float (&o)[MT][NO][4], float (&row_max)[MT][2], float (&raw_max)[MT][2],
  float (&row_sum)[MT][2], float c) {
  float tile[MT][2];
  bool exact = false;
  #pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    #pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -FA_INF;
      #pragma unroll
      for (int i = 0; i < NS; ++i) mx = fmaxf(mx, fmaxf(s[mt][i][half * 2], s[mt][i][half * 2 + 1]));
      tile[mt][half] = quad_max(mx);
      exact |= needs_exact_exponent(exponent_offset(next_max<false>(row_max[mt][half], tile[mt][half] * c)));
    }
  if (exact) {
    online_softmax_rows<true>(s, o, row_max, raw_max, row_sum, tile, c);
  } else {
    online_softmax_rows<false>(s, o, row_max, raw_max, row_sum, tile, c);
  }
}
