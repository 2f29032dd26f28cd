// ALiBi: the one bias rule of every kernel that has it (FlashAttention-2's):
//
//   score(i, j) += -slope(b, h) * |i + seqlen_k - seqlen_q - j|
//
// added to the scaled (and soft-capped) score before the mask. Kernels hold raw scores in
// their own units (qk before the scale, or c * tanh(.) under softcap, the scale then folded in),
// so the slope is divided by that unit once per (batch, head): the bias then costs one
// subtract, one absolute value and one multiply-add per element. Compiled in only with
// FA_ALIBI (a kernel key flag): plain attention's kernels do not contain it.
#pragma once
#include "common/types.cuh"

#ifndef FA_ALIBI
#define FA_ALIBI 0
#endif

struct Alibi {
  float slope;   // slope / unit
  int offset;    // seqlen_k - seqlen_q

  // `unit`: what one unit of score is in the kernel's raw scores (the scale, or 1 under softcap).
  __device__ __forceinline__ Alibi(const float* slopes, long long index, float unit, int seqlen_q, int seqlen_k)
      : Alibi(slopes[index], unit, seqlen_q, seqlen_k) {}
  // From the slope itself (0: no bias), for code where the slopes may be absent.
  __device__ __forceinline__ Alibi(float slope_value, float unit, int seqlen_q, int seqlen_k)
      : slope(slope_value / unit), offset(seqlen_k - seqlen_q) {}

  // The bias of query `row` and key `key`, in raw-score units.
  __device__ __forceinline__ float bias(int row, int key) const {
    return -slope * fabsf((float)(row + offset - key));
  }
};
