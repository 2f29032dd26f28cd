// FlashAttention forward for Hopper (sm_90a): TMA + mbarrier ring, wgmma, warp specialization.
//
// No CUDA headers: every Hopper instruction is inline PTX, so NVRTC alone compiles this file.
// The host prepends the compile-time configuration as #defines (the kernel key):
//   FA_HEAD_DIM, FA_HEAD_DIM_V   head dims of Q/K and of V (multiples of 16, at most 256)
//   FA_BLOCK_N                   keys per tile (a multiple of 16, at most 256)
//   FA_STAGES                    depth of the K/V shared-memory ring
//   FA_FP16                      1: fp16 storage, 0: bf16 storage
//   FA_CAUSAL, FA_WINDOW         mask kinds (causal is the window (left, 0), bottom-right aligned)
//   FA_SOFTCAP                   s = c * tanh(s / c) before masking
//   FA_PINGPONG                  order the two consumer warpgroups' GEMMs with named barriers
//   FA_OVERLAP                   issue the next QK^T before the current softmax
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

#if FA_FP16
#define FA_WG_T "f16"
#define FA_CVT_X2 "cvt.rn.f16x2.f32"
#else
#define FA_WG_T "bf16"
#define FA_CVT_X2 "cvt.rn.bf16x2.f32"
#endif

namespace fa_hopper {

constexpr int D = FA_HEAD_DIM;
constexpr int DV = FA_HEAD_DIM_V;
constexpr int BM = 128;
constexpr int BN = FA_BLOCK_N;
constexpr int ST = FA_STAGES;
// Head dims rounded up to whole 64-column panels; TMA fills the padding columns with zeros.
constexpr int DP = (D + 63) / 64 * 64;
constexpr int DVP = (DV + 63) / 64 * 64;
// The PV GEMM's N: DV rounded to a supported wgmma width (the padded columns are zeros).
constexpr int NV = DV <= 64 ? 64 : DV <= 128 ? (DV <= 96 ? 128 : 128) : 256;
constexpr int SQ_BYTES = BM * DP * 2;
constexpr int SK_BYTES = BN * DP * 2;
constexpr int SV_BYTES = BN * DVP * 2;
constexpr int SMEM_BYTES = SQ_BYTES + ST * (SK_BYTES + SV_BYTES) + 1024 /* barriers */ + 1024 /* alignment slack */;
constexpr int CONSUMER_THREADS = 256;

static_assert(D % 16 == 0 && DV % 16 == 0 && D <= 256 && DV <= 256, "head dims");
static_assert(BN % 16 == 0 && BN <= 256, "block N");
static_assert(NV >= DV && NV <= DVP + 64, "PV width");

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

// Two floats to one register of two 16-bit values; `lo` lands in the low half (lower column).
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  asm(FA_CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// Shared-memory matrix descriptor, 128-byte swizzle (layout type 1 in bits 62-63).
__device__ __forceinline__ u64 desc_sw128(u32 addr, u32 lbo_bytes, u32 sbo_bytes) {
  return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo_bytes >> 4) & 0x3FFF) << 16) |
         ((u64)((sbo_bytes >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

// BEGIN GENERATED WGMMA (benchmarks/hopper/gen_wgmma.py)
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

__device__ __forceinline__ bool key_visible(const MaskInfo& mi, int i, int j) {
  if (j >= mi.seqlen_k) return false;
#if FA_CAUSAL || FA_WINDOW
  if (mi.right >= 0 && j > i + mi.offset + mi.right) return false;
  if (mi.left >= 0 && j < i + mi.offset - mi.left) return false;
#endif
  return true;
}

// ---------------------------------------------------------------------------------------------
// The kernel
// ---------------------------------------------------------------------------------------------

struct Smem {
  u32 q, k0, v0, bar_q, bar_full_k, bar_full_v, bar_empty;
  __device__ __forceinline__ u32 k(int s) const { return k0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 v(int s) const { return v0 + s * SV_BYTES; }
  __device__ __forceinline__ u32 full_k(int s) const { return bar_full_k + 8 * s; }
  __device__ __forceinline__ u32 full_v(int s) const { return bar_full_v + 8 * s; }
  __device__ __forceinline__ u32 empty(int s) const { return bar_empty + 8 * s; }
};

extern "C" __global__ void __launch_bounds__(384, 1) flash_fwd_hopper(
  const __grid_constant__ TmaMap tm_q, const __grid_constant__ TmaMap tm_k, const __grid_constant__ TmaMap tm_v,
  void* __restrict__ o_ptr, float* __restrict__ lse_ptr,
  int seqlen_q, int seqlen_k, int heads_q, int group,
  long long o_stride_b, long long o_stride_s, long long o_stride_h,
  float scale_log2, float softcap_over, float softcap_log2,
  int window_left, int window_right) {
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  Smem sm;
  sm.q = base;
  sm.k0 = sm.q + SQ_BYTES;
  sm.v0 = sm.k0 + ST * SK_BYTES;
  sm.bar_q = sm.v0 + ST * SV_BYTES;
  sm.bar_full_k = sm.bar_q + 8;
  sm.bar_full_v = sm.bar_full_k + 8 * ST;
  sm.bar_empty = sm.bar_full_v + 8 * ST;

  const int tid = threadIdx.x;
  const int wg = tid / 128;
  // Heavy (causal) query blocks first: they have the most key blocks.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int kv_head = head / group;
  const int m0 = m_block * BM;

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

  // Key blocks this query block can see.
  const int n_blocks_total = (seqlen_k + BN - 1) / BN;
  int n_hi = n_blocks_total;
  int n_lo = 0;
  if (mi.right >= 0) {
    const int last = m0 + BM - 1 + mi.offset + mi.right;  // last visible key of the last row
    n_hi = min(n_hi, last < 0 ? 0 : last / BN + 1);
  }
  if (mi.left >= 0) {
    const int first = m0 + mi.offset - mi.left;
    n_lo = max(0, first < 0 ? 0 : first / BN);
  }
  const int n_iters = max(0, n_hi - n_lo);

  if (tid == 0) {
    mbar_init(sm.bar_q, 1);
    for (int s = 0; s < ST; ++s) {
      mbar_init(sm.full_k(s), 1);
      mbar_init(sm.full_v(s), 1);
      mbar_init(sm.empty(s), CONSUMER_THREADS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---------------- producer ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
    if (tid == 0 && n_iters > 0) {
      prefetch_map(&tm_q);
      prefetch_map(&tm_k);
      prefetch_map(&tm_v);
      mbar_expect_tx(sm.bar_q, SQ_BYTES);
#pragma unroll
      for (int p = 0; p < DP / 64; ++p) tma_load_4d(sm.q + p * BM * 128, &tm_q, sm.bar_q, p * 64, m0, head, batch);
      for (int it = 0; it < n_iters; ++it) {
        const int s = it % ST;
        const int n0 = (n_hi - 1 - it) * BN;
        if (it >= ST) mbar_wait(sm.empty(s), ((it / ST) - 1) & 1);
        mbar_expect_tx(sm.full_k(s), SK_BYTES);
#pragma unroll
        for (int p = 0; p < DP / 64; ++p) tma_load_4d(sm.k(s) + p * BN * 128, &tm_k, sm.full_k(s), p * 64, n0, kv_head, batch);
        mbar_expect_tx(sm.full_v(s), SV_BYTES);
#pragma unroll
        for (int p = 0; p < DVP / 64; ++p) tma_load_4d(sm.v(s) + p * BN * 128, &tm_v, sm.full_v(s), p * 64, n0, kv_head, batch);
      }
    }
    return;
  }

  // ---------------- consumers ----------------
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
  const int cw = wg - 1;               // consumer warpgroup 0 or 1
  const int ctid = tid - 128;          // 0..255 over both consumers
  const int warp = (tid / 32) % 4;     // warp in the warpgroup
  const int lane = tid % 32;
  const int row_a = m0 + cw * 64 + warp * 16 + lane / 4;  // this thread's two query rows
  const int row_b = row_a + 8;
  const int tq = lane % 4;
  (void)ctid;

  float o[NV / 2];
#pragma unroll
  for (int i = 0; i < NV / 2; ++i) o[i] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY;  // running max, already times scale*log2(e)
  float l_a = 0.f, l_b = 0.f;              // this thread's partial row sums

#if FA_PINGPONG
  // Consumer 0 goes first: pre-arrive on its own scheduling barrier.
  if (cw == 0) named_arrive(1, 256);
#endif

  if (n_iters > 0) mbar_wait(sm.bar_q, 0);

  const u32 q_base = sm.q + cw * 64 * 128;
  float s[BN / 2];

  auto qk_gemm = [&](int st) {
    const u32 kb = sm.k(st);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const u32 panel = kk / 4, within = (kk % 4) * 32;
      const u64 da = desc_sw128(q_base + panel * BM * 128 + within, 16, 1024);
      const u64 db = desc_sw128(kb + panel * BN * 128 + within, 16, 1024);
      Wgmma<BN>::ss(s, da, db, kk > 0);
    }
    wg_commit();
  };

  u32 p[BN / 16][4];
  auto pv_gemm = [&](int st) {
    const u32 vb = sm.v(st);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const u64 db = desc_sw128(vb + kk * 16 * 128, BN * 128, 1024);
      Wgmma<NV>::rs(o, p[kk], db, 1);
    }
    wg_commit();
  };

  // Scales, masks and exponentiates S (in place into p), updating the running max and sums,
  // and rescales O. `n0` is the tile's first key; `masked` says whether any key may be hidden.
  auto softmax = [&](int n0, bool masked) {
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) {
#if FA_SOFTCAP
      s[i] = tanh_approx(s[i] * softcap_over) * softcap_log2;
#else
      s[i] *= scale_log2;
#endif
    }
    if (masked) {
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = n0 + c * 8 + tq * 2 + e;
          if (!key_visible(mi, row_a, j)) s[c * 4 + e] = -INFINITY;
          if (!key_visible(mi, row_b, j)) s[c * 4 + 2 + e] = -INFINITY;
        }
      }
    }
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      mx_a = fmaxf(mx_a, fmaxf(s[c * 4 + 0], s[c * 4 + 1]));
      mx_b = fmaxf(mx_b, fmaxf(s[c * 4 + 2], s[c * 4 + 3]));
    }
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 1));
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 2));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 1));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 2));
    // A row that has seen only hidden keys keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
    const float use_a = mx_a == -INFINITY ? 0.f : mx_a;
    const float use_b = mx_b == -INFINITY ? 0.f : mx_b;
    const float fa = ex2(m_a - use_a);
    const float fb = ex2(m_b - use_b);
    m_a = mx_a;
    m_b = mx_b;
    float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      s[c * 4 + 0] = ex2(s[c * 4 + 0] - use_a);
      s[c * 4 + 1] = ex2(s[c * 4 + 1] - use_a);
      s[c * 4 + 2] = ex2(s[c * 4 + 2] - use_b);
      s[c * 4 + 3] = ex2(s[c * 4 + 3] - use_b);
      sum_a += s[c * 4 + 0] + s[c * 4 + 1];
      sum_b += s[c * 4 + 2] + s[c * 4 + 3];
    }
    l_a = l_a * fa + sum_a;
    l_b = l_b * fb + sum_b;
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      p[kk][0] = pack2(s[kk * 8 + 0], s[kk * 8 + 1]);
      p[kk][1] = pack2(s[kk * 8 + 2], s[kk * 8 + 3]);
      p[kk][2] = pack2(s[kk * 8 + 4], s[kk * 8 + 5]);
      p[kk][3] = pack2(s[kk * 8 + 6], s[kk * 8 + 7]);
    }
    return make_float2(fa, fb);
  };

  auto rescale_o = [&](float2 f) {
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

#if FA_OVERLAP
  // Software pipeline inside the warpgroup: S(j+1) = Q K(j+1)^T is issued before P(j) V(j),
  // so the tensor cores work while this warpgroup does the softmax of tile j+1.
  if (n_iters > 0) {
    {
      const int n0 = (n_hi - 1) * BN;
      mbar_wait(sm.full_k(0), 0);
#if FA_PINGPONG
      named_sync(1 + cw, 256);
#endif
      qk_gemm(0);
#if FA_PINGPONG
      named_arrive(2 - cw, 256);
#endif
      wg_wait<0>();
      fence_regs(s);
      const float2 f = softmax(n0, tile_masked(n0));
      rescale_o(f);
    }
    for (int it = 1; it < n_iters; ++it) {
      const int st = it % ST;
      const int prev = (it - 1) % ST;
      const int n0 = (n_hi - 1 - it) * BN;
      mbar_wait(sm.full_k(st), (it / ST) & 1);
#if FA_PINGPONG
      named_sync(1 + cw, 256);
#endif
      qk_gemm(st);
      mbar_wait(sm.full_v(prev), ((it - 1) / ST) & 1);
      fence_regs(o);
      pv_gemm(prev);
#if FA_PINGPONG
      named_arrive(2 - cw, 256);
#endif
      wg_wait<1>();
      fence_regs(s);
      const float2 f = softmax(n0, tile_masked(n0));
      wg_wait<0>();
      fence_regs(o);
      mbar_arrive(sm.empty(prev));
      rescale_o(f);
    }
    {
      const int last = (n_iters - 1) % ST;
      mbar_wait(sm.full_v(last), ((n_iters - 1) / ST) & 1);
      fence_regs(o);
      pv_gemm(last);
      wg_wait<0>();
      fence_regs(o);
      mbar_arrive(sm.empty(last));
    }
  }
#else
  for (int it = 0; it < n_iters; ++it) {
    const int st = it % ST;
    const int n0 = (n_hi - 1 - it) * BN;
    mbar_wait(sm.full_k(st), (it / ST) & 1);
#if FA_PINGPONG
    named_sync(1 + cw, 256);
#endif
    qk_gemm(st);
    wg_wait<0>();
    fence_regs(s);
    const float2 f = softmax(n0, tile_masked(n0));
    rescale_o(f);
    mbar_wait(sm.full_v(st), (it / ST) & 1);
    fence_regs(o);
    pv_gemm(st);
#if FA_PINGPONG
    named_arrive(2 - cw, 256);
#endif
    wg_wait<0>();
    fence_regs(o);
    mbar_arrive(sm.empty(st));
  }
#endif

  // ---------------- epilogue ----------------
  l_a += shfl_xor(l_a, 1);
  l_a += shfl_xor(l_a, 2);
  l_b += shfl_xor(l_b, 1);
  l_b += shfl_xor(l_b, 2);
  const float inv_a = l_a > 0.f ? 1.f / l_a : 0.f;
  const float inv_b = l_b > 0.f ? 1.f / l_b : 0.f;
  const float ln2 = 0.6931471805599453f;
  if (tq == 0) {
    float* lse_row = lse_ptr + ((long long)batch * heads_q + head) * seqlen_q;
    if (row_a < seqlen_q) lse_row[row_a] = l_a > 0.f ? (m_a + lg2(l_a)) * ln2 : -INFINITY;
    if (row_b < seqlen_q) lse_row[row_b] = l_b > 0.f ? (m_b + lg2(l_b)) * ln2 : -INFINITY;
  }
  u16* out = reinterpret_cast<u16*>(o_ptr) + batch * o_stride_b + head * o_stride_h;
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

}  // namespace fa_hopper
