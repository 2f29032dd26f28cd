// The sm90 set of PTX wrappers (Hopper, sm_90a): mbarriers, TMA, named barriers, the wgmma
// pipeline's fences, warp shuffles and votes, stmatrix/ldmatrix, the shared-memory matrix
// descriptor, fp32 reductions. The wgmma instructions themselves are in hopper/wgmma.cuh.
#pragma once
#include "common/math.cuh"

namespace fa_hopper {

typedef FATensorMap TmaMap;

// ---------------------------------------------------------------------------------------------
// PTX wrappers
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ u32 smem_u32(const void* p) {
  u32 r;
  asm volatile("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
  return r;
}

__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count));
}

__device__ __forceinline__ void mbar_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}

__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}

__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  asm volatile(
    "{\n"
    ".reg .pred P1;\n"
    "LAB_WAIT:\n"
    "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
    "@P1 bra DONE;\n"
    "bra LAB_WAIT;\n"
    "DONE:\n"
    "}\n" ::"r"(bar), "r"(parity) : "memory");
}

__device__ __forceinline__ void tma_load_4d(u32 dst, const TmaMap* map, u32 bar, int c0, int c1, int c2, int c3) {
  asm volatile(
    "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];"
    ::"r"(dst), "l"(reinterpret_cast<u64>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3) : "memory");
}

__device__ __forceinline__ void prefetch_map(const TmaMap* map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<u64>(map)) : "memory");
}

__device__ __forceinline__ void named_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(count) : "memory");
}

__device__ __forceinline__ void named_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(count) : "memory");
}

// Hands registers between warpgroups (setmaxnreg): the producer gives up to N per thread, the
// consumers take N.
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N));
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator reads/writes across an asynchronous wgmma.
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

__device__ __forceinline__ float shfl_xor(float v, int m) {
  float r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(m));
  return r;
}

__device__ __forceinline__ bool warp_any(bool v) {
  u32 r;
  asm volatile("{\n.reg .pred p, q;\nsetp.ne.u32 p, %1, 0;\nvote.sync.any.pred q, p, 0xffffffff;\nselp.u32 %0, 1, 0, q;\n}\n"
               : "=r"(r) : "r"((u32)v));
  return r != 0;
}

__device__ __forceinline__ u32 shfl_xor_u32(u32 v, int m) {
  u32 r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(v), "r"(m));
  return r;
}

// 4x4 transpose over the 4 threads of a quad: thread t passes v[i] = M[t][i] and gets
// r[j] = M[j][t]. Two exchange rounds (partners t^1, then t^2), two shuffles each.
__device__ __forceinline__ void quad_transpose(const u32 (&v)[4], u32 (&r)[4], int t) {
  const bool b = t & 1, h = t & 2;
  // Round 1: keep the columns of our parity, trade the others.
  const u32 k0 = b ? v[1] : v[0], k1 = b ? v[3] : v[2];              // M[t][b], M[t][b+2]
  const u32 x0 = shfl_xor_u32(b ? v[0] : v[1], 1);                     // M[t^1][b]
  const u32 x1 = shfl_xor_u32(b ? v[2] : v[3], 1);                     // M[t^1][b+2]
  // Round 2: keep column t, trade column t^2.
  const u32 own0 = h ? k1 : k0, own1 = h ? x1 : x0;                    // M[t][t], M[t^1][t]
  const u32 y0 = shfl_xor_u32(h ? k0 : k1, 2);                         // M[t^2][t]
  const u32 y1 = shfl_xor_u32(h ? x0 : x1, 2);                         // M[t^3][t]
  // Order by source thread j: rows 2h, 2h+1 are ours (own*), rows 2(1-h), 2(1-h)+1 came in (y*).
  const u32 lo_own = b ? own1 : own0, hi_own = b ? own0 : own1;
  const u32 lo_y = b ? y1 : y0, hi_y = b ? y0 : y1;
  r[0] = h ? lo_y : lo_own;
  r[1] = h ? hi_y : hi_own;
  r[2] = h ? lo_own : lo_y;
  r[3] = h ? hi_own : hi_y;
}

// A value the compiler cannot see through, so it recomputes what depends on it at each use.
__device__ __forceinline__ u64 opaque_u64(u64 x) {
  asm volatile("" : "+l"(x));
  return x;
}
__device__ __forceinline__ u32 opaque_u32(u32 x) {
  asm volatile("" : "+r"(x));
  return x;
}

// Shared-memory matrix descriptor, 128-byte swizzle (layout type 1 in bits 62-63).
__device__ __forceinline__ u64 desc_sw128(u32 addr, u32 lbo_bytes, u32 sbo_bytes) {
  return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo_bytes >> 4) & 0x3FFF) << 16) |
         ((u64)((sbo_bytes >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy reads (wgmma
// operands that the threads stored themselves rather than TMA).
__device__ __forceinline__ void fence_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Four 8x8 16-bit matrices from MMA-fragment registers to shared memory, each transposed: lane l
// gives the address of row l % 8 of matrix l / 8 as stored (a column of the fragment's matrix).
__device__ __forceinline__ void stmatrix_x4_trans(u32 addr, u32 r0, u32 r1, u32 r2, u32 r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};"
               ::"r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3) : "memory");
}

// Four 8x8 16-bit matrices from registers to shared memory as they are (no transpose): lane l
// gives the address of row l % 8 of matrix l / 8; register i of lane l holds row l / 4, elements
// 2(l % 4) and 2(l % 4) + 1 of matrix i.
__device__ __forceinline__ void stmatrix_x4(u32 addr, u32 r0, u32 r1, u32 r2, u32 r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};"
               ::"r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3) : "memory");
}

// The inverse of stmatrix_x4_trans with the same addresses: four transposed 8x8 matrices from
// shared memory into MMA-fragment registers.
__device__ __forceinline__ void ldmatrix_x4_trans(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr) : "memory");
}

// Adds a column pair into fp32 global memory (one vector reduction, done in L2).
__device__ __forceinline__ void red_add_v2(float* address, float a, float b) {
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" ::"l"(address), "f"(a), "f"(b) : "memory");
}

}  // namespace fa_hopper
