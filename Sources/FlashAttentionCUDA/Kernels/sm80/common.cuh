#pragma once
#include "FlashAttentionKernelABI.h"
// Primitives shared by every attention kernel: types, cp.async, ldmatrix, mma.sync, packing,
// fast math. Inline PTX only, so NVRTC needs no CUDA headers.
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define FA_INF __int_as_float(0x7f800000)
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

__device__ __forceinline__ u32 smem_u32(const void* p) {
  return (u32)__cvta_generic_to_shared(p);
}

// 16-byte async copy global -> shared; `valid` false zero-fills (out-of-range rows, padding).
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
  int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(bytes));
}
// 4-byte async copy (row statistics); `valid` false zero-fills.
__device__ __forceinline__ void cp_async4(u32 dst, const void* src, bool valid) {
  int bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" :: "n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2(u32 addr, u32& r0, u32& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r0), "=r"(r1) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2_trans(u32 addr, u32& r0, u32& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r0), "=r"(r1) : "r"(addr));
}

// D = A(16x16, row) * B(16x8, col) + D, fp32 accumulate.
__device__ __forceinline__ void mma16816(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
#if FA_BF16
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
#endif
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Two floats to the storage type, packed: lo in the low half.
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
#if FA_BF16
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#else
  asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#endif
  return r;
}

__device__ __forceinline__ float to_float(u16 x) {
#if FA_BF16
  return __uint_as_float(((u32)x) << 16);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"(x));
  return f;
#endif
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float fast_tanh(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffff, x, 1);
  return x + __shfl_xor_sync(0xffffffff, x, 2);
}

// A compile-time flag passed as a value, so that one generic lambda compiles to two copies (a
// masked and an unmasked one) chosen by a uniform branch.
template <bool V> struct StaticFlag { static constexpr bool value = V; };

// Visible key range [lo, hi) of query row i (bottom-right aligned causal / window).
struct KeyRange { int lo; int hi; };
__device__ __forceinline__ KeyRange visible_keys(int i, int sq, int sk, int left, int right) {
  int diag = i + sk - sq;
  KeyRange r;
  r.lo = left >= 0 ? max(diag - left, 0) : 0;
  r.hi = right >= 0 ? min(diag + right + 1, sk) : sk;
  return r;
}

// Copies a [rows x COLS] tile (COLS a multiple of 8 <= COLS_PAD) into shared memory with row
// pitch PITCH elements; rows >= valid_rows and columns >= COLS are zero-filled.
template <int ROWS, int COLS, int COLS_PAD, int PITCH, int THREADS>
__device__ __forceinline__ void load_tile(u16* smem, const u16* gmem, i64 row_stride, int valid_rows, int tid) {
  constexpr int CHUNKS = COLS_PAD / 8;
  #pragma unroll
  for (int idx = tid; idx < ROWS * CHUNKS; idx += THREADS) {
    int r = idx / CHUNKS;
    int c = idx % CHUNKS;
    bool valid = r < valid_rows && c * 8 < COLS;
    const u16* src = valid ? gmem + r * row_stride + c * 8 : gmem;
    cp_async16(smem_u32(smem + r * PITCH + c * 8), src, valid);
  }
}
