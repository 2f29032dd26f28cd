// Run 12's experiment (not shipped): the forward kernel of commit dc74246 plus FA_EXP_POLY, part of
// P's exponentials as an FMA-pipe polynomial (FlashAttention-4's split). Slower at every measured
// point (docs/perf-notes/cuda-hopper.md, runs 12-13); kept for plan12.json's A/B.
//
// FlashAttention forward for Hopper (sm_90a): TMA + mbarrier ring, wgmma, warp specialization.
//
// No CUDA headers: every Hopper instruction is inline PTX, so NVRTC alone compiles this file.
// The host prepends the compile-time configuration as #defines (the kernel key):
//   FA_HEAD_DIM, FA_HEAD_DIM_V   head dims of Q/K and of V (multiples of 16, at most 256)
//   FA_BLOCK_N                   keys per tile (a multiple of 16, at most 256)
//   FA_STAGES                    depth of the K/V shared-memory ring
//   FA_Q_STAGES                  Q tile buffers (2: the next tile's Q loads during this tile)
//   FA_FP16                      1: fp16 storage, 0: bf16 storage
//   FA_CAUSAL, FA_WINDOW         mask kinds (causal is the window (left, 0), bottom-right aligned)
//   FA_SOFTCAP                   s = c * tanh(s / c) before masking
//   FA_PINGPONG                  order the two consumer warpgroups' GEMMs with named barriers
//   FA_OVERLAP                   issue the next QK^T before the current softmax
//   FA_EXP_POLY                  of every 8 exponentials of P, how many run as an FMA-pipe
//                                polynomial instead of MUFU ex2 (0: none)
// Sizes, strides and the mask bounds are kernel arguments: one compile serves every problem size.
//
// Block: 3 warpgroups. Warpgroup 0 is the producer (one thread issues TMA loads of the Q tile
// and of the K/V ring); warpgroups 1 and 2 are consumers, each owning 64 query rows of the
// 128-row tile. S = Q K^T and O += P V run on wgmma (P from registers); softmax is online in
// the log2 domain. Shared tiles are stored as 64-column panels with the 128-byte swizzle, the
// layout TMA writes and wgmma descriptors read.

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

#ifndef FA_PINGPONG
#define FA_PINGPONG 1
#endif
#ifndef FA_OVERLAP
#define FA_OVERLAP 1
#endif
#ifndef FA_Q_STAGES
#define FA_Q_STAGES 1
#endif
#ifndef FA_EXP_POLY
#define FA_EXP_POLY 0
#endif

#if FA_FP16
#define FA_WG_T "f16"
#define FA_CVT_X2 "cvt.rn.f16x2.f32"
#else
#define FA_WG_T "bf16"
#define FA_CVT_X2 "cvt.rn.bf16x2.f32"
#endif

namespace fa_hopper {

#define FA_INF __int_as_float(0x7f800000)

constexpr int D = FA_HEAD_DIM;
constexpr int DV = FA_HEAD_DIM_V;
constexpr int BM = 128;
constexpr int BN = FA_BLOCK_N;
constexpr int ST = FA_STAGES;
constexpr int QST = FA_Q_STAGES;
// Head dims rounded up to whole 64-column panels; TMA fills the padding columns with zeros.
constexpr int DP = (D + 63) / 64 * 64;
constexpr int DVP = (DV + 63) / 64 * 64;
// The PV GEMM's N: DV rounded to a supported wgmma width (the padded columns are zeros).
constexpr int NV = DV <= 64 ? 64 : DV <= 128 ? 128 : 256;
constexpr int SQ_BYTES = BM * DP * 2;
constexpr int SK_BYTES = BN * DP * 2;
constexpr int SV_BYTES = BN * DVP * 2;
constexpr int CONSUMER_THREADS = 256;
// How far (log2 units) a row's running max may lag the true max before O is rescaled.
constexpr float RESCALE_SLACK = 8.f;

static_assert(D % 16 == 0 && DV % 16 == 0 && D <= 256 && DV <= 256, "head dims");
static_assert(BN % 16 == 0 && BN <= 256, "block N");
static_assert(NV >= DV && NV <= DVP, "PV width: head_dim_v must be 64, 96, 128 or 256 (or below 64)");

struct __align__(64) TmaMap {
  u64 words[16];
};

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

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 2^x without the MUFU (FlashAttention-4's split): floor(x) goes into the exponent bits, 2^frac
// comes from a degree-3 minimax polynomial on [0, 1) (max relative error 8.8e-5, below half an
// ulp of bf16 and fp16 P). The MUFU does 16 ex2 per clock per SM, as many as the tensor cores
// need at d = 64, so moving a share of them onto the FMA pipe shortens the softmax. Inputs are
// at most RESCALE_SLACK; below -127 (and -inf, masked keys) the result is a denormal, which the
// flush-to-zero sums and the P V products treat as zero.
__device__ __forceinline__ float ex2_poly(float x) {
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: the sum's low mantissa bits hold floor(x)
  x = fmaxf(x, -127.f);
  float r;
  asm("add.rm.ftz.f32 %0, %1, %2;" : "=f"(r) : "f"(x), "f"(kRound));
  const float f = x - (r - kRound);
  const float p = fmaf(fmaf(fmaf(0.077119089663028717041015625f, f, 0.227564394474029541015625f), f,
                            0.695146143436431884765625f), f, 1.f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(r) << 23));
}

// The exponential of P's element `i` (of this thread's BN / 2): FA_EXP_POLY of every 8 on the
// FMA pipe, the rest on the MUFU.
__device__ __forceinline__ float ex2_p(float x, int i) {
  return (i % 8) < FA_EXP_POLY ? ex2_poly(x) : ex2(x);
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

// Two floats to one register of two 16-bit values; `lo` lands in the low half (lower column).
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  asm(FA_CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// A value the compiler cannot see through, so it recomputes what depends on it at each use.
__device__ __forceinline__ u64 opaque_u64(u64 x) {
  asm volatile("" : "+l"(x));
  return x;
}

// Shared-memory matrix descriptor, 128-byte swizzle (layout type 1 in bits 62-63).
__device__ __forceinline__ u64 desc_sw128(u32 addr, u32 lbo_bytes, u32 sbo_bytes) {
  return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo_bytes >> 4) & 0x3FFF) << 16) |
         ((u64)((sbo_bytes >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

// BEGIN GENERATED WGMMA (benchmarks/hopper/gen_wgmma.py)
template <int N> struct Wgmma;
template <> struct Wgmma<64> {
  static __device__ __forceinline__ void ss(float (&d)[32], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[32], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<80> {
  static __device__ __forceinline__ void ss(float (&d)[40], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %42, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n80k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39}, %40, %41, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[40], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %45, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n80k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39}, {%40, %41, %42, %43}, %44, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<96> {
  static __device__ __forceinline__ void ss(float (&d)[48], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, %48, %49, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[48], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %53, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, {%48, %49, %50, %51}, %52, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<112> {
  static __device__ __forceinline__ void ss(float (&d)[56], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %58, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n112k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55}, %56, %57, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[56], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %61, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n112k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55}, {%56, %57, %58, %59}, %60, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<128> {
  static __device__ __forceinline__ void ss(float (&d)[64], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[64], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<144> {
  static __device__ __forceinline__ void ss(float (&d)[72], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %74, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n144k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71}, %72, %73, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[72], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %77, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n144k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71}, {%72, %73, %74, %75}, %76, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<160> {
  static __device__ __forceinline__ void ss(float (&d)[80], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %82, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n160k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79}, %80, %81, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[80], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %85, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n160k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79}, {%80, %81, %82, %83}, %84, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<176> {
  static __device__ __forceinline__ void ss(float (&d)[88], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n176k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, %88, %89, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[88], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %93, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n176k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, {%88, %89, %90, %91}, %92, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<192> {
  static __device__ __forceinline__ void ss(float (&d)[96], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %98, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n192k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95}, %96, %97, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[96], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %101, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n192k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95}, {%96, %97, %98, %99}, %100, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
template <> struct Wgmma<256> {
  static __device__ __forceinline__ void ss(float (&d)[128], u64 da, u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(accumulate));
  }
  static __device__ __forceinline__ void rs(float (&d)[128], const u32 (&a)[4], u64 db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." FA_WG_T "." FA_WG_T " "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
  }
};
// END GENERATED WGMMA

// ---------------------------------------------------------------------------------------------
// Masks
// ---------------------------------------------------------------------------------------------

// Visible keys of query row i: [i + offset - left, i + offset + right] intersected with [0, sk),
// offset = sk - sq (bottom-right alignment); a negative bound is unbounded.
struct MaskInfo {
  int seqlen_k;
  int offset;
  int left;
  int right;
};


// ---------------------------------------------------------------------------------------------
// The kernel
// ---------------------------------------------------------------------------------------------

struct Smem {
  u32 q0, k0, v0, bar_q_full, bar_q_empty, bar_full_k, bar_full_v, bar_empty_k, bar_empty_v;
  __device__ __forceinline__ u32 q(int s) const { return q0 + s * SQ_BYTES; }
  __device__ __forceinline__ u32 q_full(int s) const { return bar_q_full + 8 * s; }
  __device__ __forceinline__ u32 q_empty(int s) const { return bar_q_empty + 8 * s; }
  __device__ __forceinline__ u32 k(int s) const { return k0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 v(int s) const { return v0 + s * SV_BYTES; }
  __device__ __forceinline__ u32 full_k(int s) const { return bar_full_k + 8 * s; }
  __device__ __forceinline__ u32 full_v(int s) const { return bar_full_v + 8 * s; }
  __device__ __forceinline__ u32 empty_k(int s) const { return bar_empty_k + 8 * s; }
  __device__ __forceinline__ u32 empty_v(int s) const { return bar_empty_v + 8 * s; }
};

// One work tile: 128 query rows of one (batch, head), and the key blocks they can see.
struct Tile {
  int m0, head, batch, n_lo, n_hi;
  __device__ __forceinline__ int iters() const { return max(0, n_hi - n_lo); }
};

// Work item w is a pair of query blocks of one (batch, head): m = M-1-j and m = j (one block
// when they coincide). Under a causal mask their key-tile counts add up to about M+1 whatever
// j is, so taking items round-robin balances the blocks; items of one head are consecutive, so
// the blocks resident at once share that head's K/V in L2.
__device__ __forceinline__ int pair_count(int m_blocks) { return (m_blocks + 1) / 2; }

__device__ __forceinline__ bool item_has_tile(int w, int sub, int m_blocks) {
  const int j = w % pair_count(m_blocks);
  return sub == 0 || j != m_blocks - 1 - j;
}

__device__ __forceinline__ Tile tile_at(int w, int sub, int m_blocks, int heads_q, const MaskInfo& mi) {
  Tile tl;
  const int bh = w / pair_count(m_blocks);
  const int j = w % pair_count(m_blocks);
  tl.m0 = (sub == 0 ? m_blocks - 1 - j : j) * BM;
  tl.head = bh % heads_q;
  tl.batch = bh / heads_q;
  tl.n_hi = (mi.seqlen_k + BN - 1) / BN;
  tl.n_lo = 0;
  if (mi.right >= 0) {
    const int last = tl.m0 + BM - 1 + mi.offset + mi.right;  // last visible key of the last row
    tl.n_hi = min(tl.n_hi, last < 0 ? 0 : last / BN + 1);
  }
  if (mi.left >= 0) {
    const int first = tl.m0 + mi.offset - mi.left;
    tl.n_lo = first < 0 ? 0 : first / BN;
  }
  return tl;
}

// Work items are taken round-robin, w = blockIdx.x, blockIdx.x + gridDim.x, ...: the host
// launches one block per item, or one per SM (persistent). Either way the producer loads the
// next tile's Q and K/V while the consumers finish the current one.
extern "C" __global__ void __launch_bounds__(384, 1) flash_fwd_hopper(
  const __grid_constant__ TmaMap tm_q, const __grid_constant__ TmaMap tm_k, const __grid_constant__ TmaMap tm_v,
  void* __restrict__ o_ptr, float* __restrict__ lse_ptr,
  int seqlen_q, int seqlen_k, int heads_q, int group, int m_blocks, int num_items,
  long long o_stride_b, long long o_stride_s, long long o_stride_h,
  long long lse_stride_b, long long lse_stride_h,
  float scale_log2, float softcap_over, float softcap_log2,
  int window_left, int window_right) {
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  Smem sm;
  sm.q0 = base;
  sm.k0 = sm.q0 + QST * SQ_BYTES;
  sm.v0 = sm.k0 + ST * SK_BYTES;
  sm.bar_q_full = sm.v0 + ST * SV_BYTES;
  sm.bar_q_empty = sm.bar_q_full + 8 * QST;
  sm.bar_full_k = sm.bar_q_empty + 8 * QST;
  sm.bar_full_v = sm.bar_full_k + 8 * ST;
  sm.bar_empty_k = sm.bar_full_v + 8 * ST;
  sm.bar_empty_v = sm.bar_empty_k + 8 * ST;

  const int tid = threadIdx.x;
  const int wg = tid / 128;

  MaskInfo mi;
  mi.seqlen_k = seqlen_k;
  mi.offset = seqlen_k - seqlen_q;
#if FA_CAUSAL
  mi.left = window_left;
  mi.right = 0;
#elif FA_WINDOW
  mi.left = window_left;
  mi.right = window_right;
#else
  mi.left = -1;
  mi.right = -1;
#endif

  if (tid == 0) {
    for (int s = 0; s < QST; ++s) {
      mbar_init(sm.q_full(s), 1);
      mbar_init(sm.q_empty(s), CONSUMER_THREADS);
    }
    for (int s = 0; s < ST; ++s) {
      mbar_init(sm.full_k(s), 1);
      mbar_init(sm.full_v(s), 1);
      mbar_init(sm.empty_k(s), CONSUMER_THREADS);
      mbar_init(sm.empty_v(s), CONSUMER_THREADS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---------------- producer ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
    if (tid == 0) {
      prefetch_map(&tm_q);
      prefetch_map(&tm_k);
      prefetch_map(&tm_v);
      int ring = 0;     // K/V tiles loaded so far (ring position across work tiles)
      int q_loads = 0;  // Q tiles loaded so far
      for (int w = blockIdx.x; w < num_items; w += gridDim.x) {
        for (int sub = 0; sub < 2; ++sub) {
          if (!item_has_tile(w, sub, m_blocks)) continue;
          const Tile tl = tile_at(w, sub, m_blocks, heads_q, mi);
          const int n_iters = tl.iters();
          if (n_iters == 0) continue;
          const int kv_head = tl.head / group;
          // The consumers release a Q buffer once the last QK^T of the tile that used it has
          // completed. With two buffers this wait has long passed: the producer gets here once
          // it has issued the previous tile's last V load, a few key tiles before that tile ends.
          const int qs = q_loads % QST;
          if (q_loads >= QST) mbar_wait(sm.q_empty(qs), ((q_loads / QST) - 1) & 1);
          mbar_expect_tx(sm.q_full(qs), SQ_BYTES);
#pragma unroll
          for (int p = 0; p < DP / 64; ++p)
            tma_load_4d(sm.q(qs) + p * BM * 128, &tm_q, sm.q_full(qs), p * 64, tl.m0, tl.head, tl.batch);
          ++q_loads;
          // K runs one tile ahead of V: the consumers need K(j+1) (for QK^T) before V(j) (for PV).
          auto load_k = [&](int it) {
            const int r = ring + it, s = r % ST;
            if (r >= ST) mbar_wait(sm.empty_k(s), ((r / ST) - 1) & 1);
            mbar_expect_tx(sm.full_k(s), SK_BYTES);
#pragma unroll
            for (int p = 0; p < DP / 64; ++p)
              tma_load_4d(sm.k(s) + p * BN * 128, &tm_k, sm.full_k(s), p * 64, (tl.n_hi - 1 - it) * BN, kv_head, tl.batch);
          };
          auto load_v = [&](int it) {
            const int r = ring + it, s = r % ST;
            if (r >= ST) mbar_wait(sm.empty_v(s), ((r / ST) - 1) & 1);
            mbar_expect_tx(sm.full_v(s), SV_BYTES);
#pragma unroll
            for (int p = 0; p < DVP / 64; ++p)
              tma_load_4d(sm.v(s) + p * BN * 128, &tm_v, sm.full_v(s), p * 64, (tl.n_hi - 1 - it) * BN, kv_head, tl.batch);
          };
          load_k(0);
          for (int it = 0; it < n_iters; ++it) {
            if (it + 1 < n_iters) load_k(it + 1);
            load_v(it);
          }
          ring += n_iters;
        }
      }
    }
    return;
  }

  // ---------------- consumers ----------------
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
  const int cw = wg - 1;               // consumer warpgroup 0 or 1
  const int warp = (tid / 32) % 4;     // warp in the warpgroup
  const int lane = tid % 32;
  const int tq = lane % 4;
  // 16-byte output stores need 16-byte aligned rows; otherwise O goes out as 4-byte pairs.
  const bool o_vec16 = ((reinterpret_cast<u64>(o_ptr) & 15) | ((o_stride_b | o_stride_s | o_stride_h) & 7)) == 0;

#if FA_PINGPONG
  // Consumer 0 goes first: pre-arrive on its own scheduling barrier.
  if (cw == 0) named_arrive(1, 256);
#endif

  u32 q_base = sm.q(0) + cw * 64 * 128;  // this warpgroup's 64 rows of the current Q buffer
  float s[BN / 2];
  u32 p[BN / 16][4];
  float o[NV / 2];
  float m_a, m_b;  // running max, already times scale*log2(e)
  float l_a, l_b;  // this thread's partial row sums
  int m0 = 0, n_hi = 0, row_a = 0, row_b = 0;

  // Descriptors are rebuilt from an opaque base at each use: hoisted out of the loop, the
  // per-k-step descriptors would hold 2 registers each for the whole tile (and spill at d=256).
  auto qk_gemm = [&](int st) {
    const u64 qa = opaque_u64(desc_sw128(q_base, 16, 1024));
    const u64 kb = opaque_u64(desc_sw128(sm.k(st), 16, 1024));
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const u32 panel = kk / 4, within = (kk % 4) * 32;
      const u64 da = qa + ((panel * BM * 128 + within) >> 4);
      const u64 db = kb + ((panel * BN * 128 + within) >> 4);
      Wgmma<BN>::ss(s, da, db, kk > 0);
    }
    wg_commit();
  };

  auto pv_gemm = [&](int st) {
    const u64 vb = opaque_u64(desc_sw128(sm.v(st), BN * 128, 1024));
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) Wgmma<NV>::rs(o, p[kk], vb + ((kk * 16 * 128) >> 4), 1);
    wg_commit();
  };

  // Masks and exponentiates S in place (scale folded in), updates the running max and sums,
  // and returns the factors that rescale O. `n0` is the tile's first key; `masked` says
  // whether any key of the tile may be hidden.
  auto softmax = [&](int n0, bool masked) {
#if FA_SOFTCAP
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) s[i] = tanh_approx(s[i] * softcap_over) * softcap_log2;
    const float mul = 1.f;
#else
    // Raw scores: the max commutes with the positive scale, which is folded into one FFMA below.
    const float mul = scale_log2;
#endif
    if (masked) {
      // Visible keys of each row as a range of column offsets from this thread's first column,
      // so each element costs two compares against compile-time offsets.
      const int first = n0 + tq * 2;
      int hi_a = seqlen_k - 1 - first, hi_b = hi_a;
      int lo_a = -(1 << 30), lo_b = -(1 << 30);
#if FA_CAUSAL || FA_WINDOW
      if (mi.right >= 0) {
        hi_a = min(hi_a, row_a + mi.offset + mi.right - first);
        hi_b = min(hi_b, row_b + mi.offset + mi.right - first);
      }
      if (mi.left >= 0) {
        lo_a = row_a + mi.offset - mi.left - first;
        lo_b = row_b + mi.offset - mi.left - first;
      }
#endif
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = c * 8 + e;
          if (r > hi_a || r < lo_a) s[c * 4 + e] = -FA_INF;
          if (r > hi_b || r < lo_b) s[c * 4 + 2 + e] = -FA_INF;
        }
      }
    }
    float mx_a = -FA_INF, mx_b = -FA_INF;
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      mx_a = fmaxf(mx_a, fmaxf(s[c * 4 + 0], s[c * 4 + 1]));
      mx_b = fmaxf(mx_b, fmaxf(s[c * 4 + 2], s[c * 4 + 3]));
    }
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 1));
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 2));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 1));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 2));
    // Running max in the scaled log2 domain. A row keeps its old max unless the new one is more
    // than RESCALE_SLACK above it: P then stays below 2^RESCALE_SLACK (no overflow in fp32 sums
    // nor in the 16-bit P), O needs no rescale (factor exactly 1), and the result is the same
    // because O, l and the LSE all use the max that was kept. After the first tiles of a row the
    // max rarely jumps that far, so most tiles skip the rescale of O.
    mx_a = fmaxf(m_a, mx_a * mul);
    mx_b = fmaxf(m_b, mx_b * mul);
    if (mx_a - m_a <= RESCALE_SLACK) mx_a = m_a;
    if (mx_b - m_b <= RESCALE_SLACK) mx_b = m_b;
    // A row that has seen only hidden keys keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
    const float use_a = mx_a == -FA_INF ? 0.f : mx_a;
    const float use_b = mx_b == -FA_INF ? 0.f : mx_b;
    const float fa = mx_a == m_a ? 1.f : ex2(m_a - use_a);
    const float fb = mx_b == m_b ? 1.f : ex2(m_b - use_b);
    m_a = mx_a;
    m_b = mx_b;
    float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      s[c * 4 + 0] = ex2_p(fmaf(s[c * 4 + 0], mul, -use_a), c * 4 + 0);
      s[c * 4 + 1] = ex2_p(fmaf(s[c * 4 + 1], mul, -use_a), c * 4 + 1);
      s[c * 4 + 2] = ex2_p(fmaf(s[c * 4 + 2], mul, -use_b), c * 4 + 2);
      s[c * 4 + 3] = ex2_p(fmaf(s[c * 4 + 3], mul, -use_b), c * 4 + 3);
      sum_a += s[c * 4 + 0] + s[c * 4 + 1];
      sum_b += s[c * 4 + 2] + s[c * 4 + 3];
    }
    l_a = l_a * fa + sum_a;
    l_b = l_b * fb + sum_b;
    return make_float2(fa, fb);
  };

  // P (in S's registers) to 16-bit wgmma A fragments. Only after the previous P V has finished
  // reading `p`.
  auto convert_p = [&]() {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      p[kk][0] = pack2(s[kk * 8 + 0], s[kk * 8 + 1]);
      p[kk][1] = pack2(s[kk * 8 + 2], s[kk * 8 + 3]);
      p[kk][2] = pack2(s[kk * 8 + 4], s[kk * 8 + 5]);
      p[kk][3] = pack2(s[kk * 8 + 6], s[kk * 8 + 7]);
    }
  };

  // Skipped when no row of the warp changed its max (the common case, see softmax): one vote
  // instead of NV/2 multiplies per thread. Not in softcap kernels: there the branch made the
  // d=128, BN=176 variant spill (20 bytes), and the tanh per score outweighs the rescale.
  auto rescale_o = [&](float2 f) {
#if !FA_SOFTCAP
    if (!warp_any(f.x != 1.f || f.y != 1.f)) return;
#endif
#pragma unroll
    for (int c = 0; c < NV / 8; ++c) {
      o[c * 4 + 0] *= f.x;
      o[c * 4 + 1] *= f.x;
      o[c * 4 + 2] *= f.y;
      o[c * 4 + 3] *= f.y;
    }
  };

  // Whether tile n0 needs per-element masking (a tail column, or a causal/window edge).
  auto tile_masked = [&](int n0) {
    if (n0 + BN > seqlen_k) return true;
#if FA_CAUSAL || FA_WINDOW
    if (mi.right >= 0 && n0 + BN - 1 > m0 + mi.offset + mi.right) return true;
    if (mi.left >= 0 && n0 < m0 + BM - 1 + mi.offset - mi.left) return true;
#endif
    return false;
  };

  int ring = 0;
  int q_loads = 0;
  for (int w = blockIdx.x; w < num_items; w += gridDim.x)
  for (int sub = 0; sub < 2; ++sub) {
    if (!item_has_tile(w, sub, m_blocks)) continue;
    const Tile tl = tile_at(w, sub, m_blocks, heads_q, mi);
    const int n_iters = tl.iters();
    const int head = tl.head;
    const int batch = tl.batch;
    m0 = tl.m0;
    n_hi = tl.n_hi;
    row_a = m0 + cw * 64 + warp * 16 + lane / 4;  // this thread's two query rows
    row_b = row_a + 8;
#pragma unroll
    for (int i = 0; i < NV / 2; ++i) o[i] = 0.f;
    m_a = -FA_INF;
    m_b = -FA_INF;
    l_a = 0.f;
    l_b = 0.f;
    const int qs = q_loads % QST;
    q_base = sm.q(qs) + cw * 64 * 128;
    if (n_iters > 0) mbar_wait(sm.q_full(qs), (q_loads / QST) & 1);

#if FA_OVERLAP
    // Software pipeline inside the warpgroup: S(j+1) = Q K(j+1)^T is issued before P(j) V(j),
    // so the tensor cores work while this warpgroup does the softmax of tile j+1.
    if (n_iters > 0) {
      {
        const int n0 = (n_hi - 1) * BN;
        mbar_wait(sm.full_k(ring % ST), (ring / ST) & 1);
#if FA_PINGPONG
        named_sync(1 + cw, 256);
#endif
        qk_gemm(ring % ST);
#if FA_PINGPONG
        named_arrive(2 - cw, 256);
#endif
        wg_wait<0>();
        fence_regs(s);
        mbar_arrive(sm.empty_k(ring % ST));
        const float2 f = softmax(n0, tile_masked(n0));
        convert_p();
        rescale_o(f);
      }
      for (int it = 1; it < n_iters; ++it) {
        const int st = (ring + it) % ST;
        const int prev = (ring + it - 1) % ST;
        const int n0 = (n_hi - 1 - it) * BN;
        mbar_wait(sm.full_k(st), ((ring + it) / ST) & 1);
#if FA_PINGPONG
        named_sync(1 + cw, 256);
#endif
        qk_gemm(st);
        mbar_wait(sm.full_v(prev), ((ring + it - 1) / ST) & 1);
        fence_regs(o);
        pv_gemm(prev);
#if FA_PINGPONG
        named_arrive(2 - cw, 256);
#endif
        wg_wait<1>();
        fence_regs(s);
        mbar_arrive(sm.empty_k(st));
        const float2 f = softmax(n0, tile_masked(n0));
        wg_wait<0>();
        fence_regs(o);
        mbar_arrive(sm.empty_v(prev));
        convert_p();
        rescale_o(f);
      }
      {
        // Every QK^T of this tile has completed: Q may be overwritten by the next tile's.
        mbar_arrive(sm.q_empty(qs));
        const int last = (ring + n_iters - 1) % ST;
        mbar_wait(sm.full_v(last), ((ring + n_iters - 1) / ST) & 1);
        fence_regs(o);
        pv_gemm(last);
        wg_wait<0>();
        fence_regs(o);
        mbar_arrive(sm.empty_v(last));
      }
    }
#else
    for (int it = 0; it < n_iters; ++it) {
      const int st = (ring + it) % ST;
      const int n0 = (n_hi - 1 - it) * BN;
      mbar_wait(sm.full_k(st), ((ring + it) / ST) & 1);
#if FA_PINGPONG
      named_sync(1 + cw, 256);
#endif
      qk_gemm(st);
      wg_wait<0>();
      fence_regs(s);
      mbar_arrive(sm.empty_k(st));
      if (it == n_iters - 1) mbar_arrive(sm.q_empty(qs));
      const float2 f = softmax(n0, tile_masked(n0));
      convert_p();
      rescale_o(f);
      mbar_wait(sm.full_v(st), ((ring + it) / ST) & 1);
      fence_regs(o);
      pv_gemm(st);
#if FA_PINGPONG
      named_arrive(2 - cw, 256);
#endif
      wg_wait<0>();
      fence_regs(o);
      mbar_arrive(sm.empty_v(st));
    }
#endif

    if (n_iters > 0) {
      ++q_loads;
      ring += n_iters;
    }

    // ---------------- epilogue ----------------
    l_a += shfl_xor(l_a, 1);
    l_a += shfl_xor(l_a, 2);
    l_b += shfl_xor(l_b, 1);
    l_b += shfl_xor(l_b, 2);
    const float inv_a = l_a > 0.f ? 1.f / l_a : 0.f;
    const float inv_b = l_b > 0.f ? 1.f / l_b : 0.f;
    const float ln2 = 0.6931471805599453f;
    if (tq == 0) {
      float* lse_row = lse_ptr + batch * lse_stride_b + head * lse_stride_h;
      if (row_a < seqlen_q) lse_row[row_a] = l_a > 0.f ? (m_a + lg2(l_a)) * ln2 : -FA_INF;
      if (row_b < seqlen_q) lse_row[row_b] = l_b > 0.f ? (m_b + lg2(l_b)) * ln2 : -FA_INF;
    }
    u16* out = reinterpret_cast<u16*>(o_ptr) + batch * o_stride_b + head * o_stride_h;
    if (o_vec16) {
      // A quad holds 8-column chunks of its two rows as 4-byte pairs, one pair per thread; a 4x4
      // transpose over the quad gives each thread one whole chunk, stored as 16 bytes: a quarter
      // of the store instructions and whole 32-byte sectors.
      uint4* out_a = reinterpret_cast<uint4*>(out + row_a * o_stride_s);
      uint4* out_b = reinterpret_cast<uint4*>(out + row_b * o_stride_s);
#pragma unroll
      for (int g = 0; g < NV / 32; ++g) {
        u32 va[4], vb[4], ra[4], rb[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int c = g * 4 + i;
          va[i] = pack2(o[c * 4 + 0] * inv_a, o[c * 4 + 1] * inv_a);
          vb[i] = pack2(o[c * 4 + 2] * inv_b, o[c * 4 + 3] * inv_b);
        }
        quad_transpose(va, ra, tq);
        quad_transpose(vb, rb, tq);
        const int chunk = g * 4 + tq;
        if (chunk * 8 < DV) {
          if (row_a < seqlen_q) out_a[chunk] = make_uint4(ra[0], ra[1], ra[2], ra[3]);
          if (row_b < seqlen_q) out_b[chunk] = make_uint4(rb[0], rb[1], rb[2], rb[3]);
        }
      }
    } else {
      u32* out_a = reinterpret_cast<u32*>(out + row_a * o_stride_s);
      u32* out_b = reinterpret_cast<u32*>(out + row_b * o_stride_s);
#pragma unroll
      for (int c = 0; c < NV / 8; ++c) {
        const int col = c * 8 + tq * 2;
        if (col < DV) {
          if (row_a < seqlen_q) out_a[col / 2] = pack2(o[c * 4 + 0] * inv_a, o[c * 4 + 1] * inv_a);
          if (row_b < seqlen_q) out_b[col / 2] = pack2(o[c * 4 + 2] * inv_b, o[c * 4 + 3] * inv_b);
        }
      }
    }
  }
}

}  // namespace fa_hopper
