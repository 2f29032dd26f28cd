// Fast math and storage conversions, the same PTX on every architecture: the exponentials and
// logarithm of the online softmax (log2 domain), the softcap's tanh, and 16-bit packing.
#pragma once
#include "common/types.cuh"

#if FA_BF16
#define FA_CVT_X2 "cvt.rn.bf16x2.f32"
#else
#define FA_CVT_X2 "cvt.rn.f16x2.f32"
#endif

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float lg2(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float tanh_approx(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Two floats to one register of two 16-bit values of the storage dtype; `lo` lands in the low
// half (the lower column).
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  asm(FA_CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// One 16-bit value of the storage dtype to float.
__device__ __forceinline__ float to_float(u16 x) {
#if FA_BF16
  return __uint_as_float(((u32)x) << 16);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
  return f;
#endif
}

// One register of two 16-bit values (the storage dtype) to two floats, low half first.
__device__ __forceinline__ void unpack2(u32 v, float& lo, float& hi) {
#if FA_BF16
  lo = __uint_as_float(v << 16);
  hi = __uint_as_float(v & 0xFFFF0000u);
#else
  asm("{ .reg .f16 a, b; mov.b32 {a, b}, %2; cvt.f32.f16 %0, a; cvt.f32.f16 %1, b; }" : "=f"(lo), "=f"(hi) : "r"(v));
#endif
}
