// ALiBi in the Hopper kernels (FA_ALIBI; kernels without it contain none of this): the bias
// -slope * |query + seqlen_k - seqlen_q - key| of common/alibi.cuh, in the log2 units of the
// softmax, split so that what varies along a row costs one FFMA per score.
//
// A thread holds two rows (a, and b = a + 8) of an accumulator tile against columns
// first + k, k = 8 c + e (e = 0, 1). With d = query + offset - key, the distance of a pair, on
// a warp's tile whose visible pairs all lie on one side of the diagonal (`side` +1: d >= 0,
// -1: d <= 0) the bias is -side * slope * d: linear, so it splits into a part that varies along
// the row (a compile-time column times the slope: one FFMA with an immediate) and a per-row
// remainder that the kernels fold into terms they already add per row (the row max and the
// exponent's offset, or the LSE). Only a tile that the diagonal crosses pays the absolute value
// (one FADD and one FFMA with |.| per score). Under a causal mask every visible pair has d >= 0,
// so side is +1 everywhere: hidden pairs are -inf (forward) or selected to 0 (backward)
// whatever their bias.
#pragma once
#include "common/mask.cuh"

#ifndef FA_ALIBI
#define FA_ALIBI 0
#endif

namespace fa_hopper {

// The slope of (batch, query head) times log2(e): the bias per unit of distance in log2 units.
__device__ __forceinline__ float alibi_slope_log2(const float* slopes, long long batch_stride, int batch, int head) {
  return slopes[batch * batch_stride + head] * FA_LOG2E;
}

// Which side of the diagonal the pairs of rows [row0, row0 + rows) x keys [key0, key0 + keys)
// lie on: +1 when every d = row + offset - key >= 0, -1 when every d <= 0, 0 when the diagonal
// crosses the tile. Causal: +1 (the keys past the diagonal are hidden).
template <MaskKind KIND>
__device__ __forceinline__ int alibi_side(int row0, int rows, int key0, int keys, int offset) {
  if (KIND == MaskKind::causal) return 1;
  if (key0 + keys - 1 <= row0 + offset) return 1;
  if (key0 >= row0 + rows - 1 + offset) return -1;
  return 0;
}

// Adds the bias to a row-major accumulator (rows a and a + 8 of a thread, N columns; `slope` in
// the accumulator's units) except for its per-row remainder, returned as (row a, row b): the
// caller adds it to each row's max and exponent offset. `d_a` = row_a + offset - first, the
// distance of the thread's first element of row a.
template <int N>
__device__ __forceinline__ float2 add_alibi_rows(float (&s)[N / 2], float slope, int side, int d_a) {
  if (side != 0) {
    // -side slope (d - k) = side slope k - side slope d.
    const float signed_slope = side > 0 ? slope : -slope;
#pragma unroll
    for (int c = 0; c < N / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float k = (float)(c * 8 + e);
        s[c * 4 + e] = fmaf(signed_slope, k, s[c * 4 + e]);
        s[c * 4 + 2 + e] = fmaf(signed_slope, k, s[c * 4 + 2 + e]);
      }
    }
    return make_float2(-signed_slope * (float)d_a, -signed_slope * (float)(d_a + 8));
  }
  const float da = (float)d_a, db = (float)(d_a + 8);
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float k = (float)(c * 8 + e);
      s[c * 4 + e] = fmaf(-slope, fabsf(da - k), s[c * 4 + e]);
      s[c * 4 + 2 + e] = fmaf(-slope, fabsf(db - k), s[c * 4 + 2 + e]);
    }
  }
  return make_float2(0.f, 0.f);
}

}  // namespace fa_hopper
