// The online softmax of the forward kernels, per query row, in the scaled log2 domain: a row's
// running max m is kept already multiplied by scale·log2(e), its probabilities are
// p = 2^(s·scale·log2(e) - m), and l sums them. Over key tiles:
//
//   m' = next_max(m, tile max)            the update (lazy: m stays unless the tile's max is far above)
//   f  = rescale_factor(m, m')            O and l are multiplied by f (exactly 1 when m' = m)
//   p  = 2^(s·c - exponent_offset(m'))    the -inf guard: a row that has seen only hidden keys
//                                         keeps m = -inf, and subtracting 0 then gives p = 0, not NaN
// and at the end O / l with inverse_sum(l) (0 for a row with no visible key) and the LSE with
// row_lse(m, l) (-inf for such a row). The kernels hold the rows' values in their own fragment
// layouts and call these for each row.
//
// NaN or inf in Q, K or V reaches O and the LSE as in a standard attention: fmaxf skips a NaN
// score, so m stays finite, but its p = 2^NaN makes l NaN, and the finalize tests l == 0 (the only
// value a row with no visible key has), never l > 0, which a NaN l fails like an empty row.
#pragma once
#include "common/math.cuh"

// How far (log2 units) a row's running max may lag the true max before O is rescaled (the lazy
// update). P then stays below 2^RESCALE_SLACK: safe in the fp32 sums and in 16-bit P; O, l and
// the LSE all use the max that was kept, so the result is the same function. After the first
// tiles of a row the max rarely jumps that far, so most tiles skip the rescale of O (+5-10 % at
// d = 256, run 7 of docs/perf-notes/cuda-hopper.md).
constexpr float RESCALE_SLACK = 8.f;

// The running max after a tile whose (scaled) max is `tile_max`.
template <bool LAZY>
__device__ __forceinline__ float next_max(float running, float tile_max) {
  float m = fmaxf(running, tile_max);
  if (LAZY && m - running <= RESCALE_SLACK) m = running;
  return m;
}

// What to subtract in the exponent: the running max, or 0 while it is -inf.
__device__ __forceinline__ float exponent_offset(float running_max) {
  return running_max == -FA_INF ? 0.f : running_max;
}

// The factor that brings O and l from the old max to the new one.
__device__ __forceinline__ float rescale_factor(float old_max, float new_max) {
  return new_max == old_max ? 1.f : ex2(old_max - exponent_offset(new_max));
}

// Large scores (issue #16). The FFMA form 2^(s·c - m) subtracts m = max·c rounded to fp32: the
// max's own p is then 2^δ with |δ| up to half an ulp of m (2^-11 at |m| = 1.4e4), not 1, and the
// 16-bit P that P V takes no longer matches the fp32 l, so a one-hot row comes out a 16-bit ulp
// off where a standard attention is exact. From |m| >= EXACT_EXPONENT_FROM (the CPU's threshold)
// the kernels form 2^((s - r)·c) from the row's raw max r instead: s - r is exact near the max,
// whose p is exactly 1. Below it, δ <= 2^-18 is far under P's rounding, and the one FFMA stays.
constexpr float EXACT_EXPONENT_FROM = 64.f;

// Whether a row whose exponent subtracts `scaled_offset` takes the exact form.
__device__ __forceinline__ bool needs_exact_exponent(float scaled_offset) {
  return fabsf(scaled_offset) >= EXACT_EXPONENT_FROM;
}

// The raw max the exact form subtracts: 0 while it is -inf (the row's scores are all -inf).
__device__ __forceinline__ float raw_exponent_offset(float raw_max) {
  return raw_max == -FA_INF ? 0.f : raw_max;
}

// 1 / l for the output, 0 for a row with no visible key (its output row is 0); NaN for a NaN l.
__device__ __forceinline__ float inverse_sum(float l) { return l == 0.f ? 0.f : 1.f / l; }

// The natural-log LSE of a row, -inf for a row with no visible key; NaN for a NaN l.
__device__ __forceinline__ float row_lse(float running_max, float l) {
  return l == 0.f ? -FA_INF : (running_max + lg2(l)) * FA_LN2;
}
