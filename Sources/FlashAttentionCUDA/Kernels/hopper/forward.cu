#include "hopper/common.cuh"
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
//   FA_CONSUMERS                 consumer warpgroups of 64 query rows: 2, or 3 (no ping-pong)
// Sizes, strides and the mask bounds are kernel arguments: one compile serves every problem size.
//
// Block: 1 + FA_CONSUMERS warpgroups. Warpgroup 0 is the producer (one thread issues TMA loads
// of the Q tile and of the K/V ring); the others are consumers, each owning 64 query rows of the
// 128- or 192-row tile (three consumers: a third warp per scheduler hides the softmax's
// dependency latencies, which bound d = 64 with two). S = Q K^T and O += P V run on wgmma (P
// from registers); softmax is online in the log2 domain. Shared tiles are stored as 64-column
// panels with the 128-byte swizzle, the layout TMA writes and wgmma descriptors read.

// The common part (types, PTX wrappers, wgmma) is hopper_common.cuh, prepended by the host.

#ifndef FA_PINGPONG
#define FA_PINGPONG 1
#endif
#ifndef FA_OVERLAP
#define FA_OVERLAP 1
#endif
#ifndef FA_Q_STAGES
#define FA_Q_STAGES 1
#endif
#ifndef FA_CONSUMERS
#define FA_CONSUMERS 2
#endif

namespace fa_hopper {


constexpr int D = FA_HEAD_DIM;
constexpr int DV = FA_HEAD_DIM_V;
constexpr int NC = FA_CONSUMERS;  // consumer warpgroups of 64 rows
constexpr int BM = 64 * NC;
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
constexpr int CONSUMER_THREADS = 128 * NC;
static_assert(NC == 2 || (NC == 3 && !FA_PINGPONG), "three consumers: no ping-pong");
// How far (log2 units) a row's running max may lag the true max before O is rescaled.
constexpr float RESCALE_SLACK = 8.f;

static_assert(D % 16 == 0 && DV % 16 == 0 && D <= 256 && DV <= 256, "head dims");
static_assert(BN % 16 == 0 && BN <= 256, "block N");
static_assert(NV >= DV && NV <= DVP, "PV width: head_dim_v must be 64, 96, 128 or 256 (or below 64)");

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
extern "C" __global__ void __launch_bounds__(128 * (NC + 1), 1) flash_fwd_hopper(
  const __grid_constant__ FAHopperForwardParams params) {
  const TmaMap& tm_q = params.tm_q;
  const TmaMap& tm_k = params.tm_k;
  const TmaMap& tm_v = params.tm_v;
  // The pointers as restrict-qualified locals: restrict on a struct member is ignored.
  void* __restrict__ o_ptr = params.o;
  float* __restrict__ lse_ptr = params.lse;
  const int seqlen_q = params.seqlen_q, seqlen_k = params.seqlen_k, heads_q = params.heads_q, group = params.group;
  const int m_blocks = params.m_blocks, num_items = params.num_items;
  const long long o_stride_b = params.o_strides.batch, o_stride_s = params.o_strides.row, o_stride_h = params.o_strides.head;
  const long long lse_stride_b = params.lse_strides.batch, lse_stride_h = params.lse_strides.head;
  const float scale_log2 = params.scale_log2, softcap_over = params.softcap_over, softcap_log2 = params.softcap_log2;
  const int window_left = params.window_left, window_right = params.window_right;
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
  #if FA_CONSUMERS == 3
  // 512 threads: 128 x 24 (producer) + 384 x 160 fits the 64K registers of the SM.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 160;");
#else
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
#endif
  const int cw = wg - 1;               // consumer warpgroup 0 .. NC-1
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
      s[c * 4 + 0] = ex2(fmaf(s[c * 4 + 0], mul, -use_a));
      s[c * 4 + 1] = ex2(fmaf(s[c * 4 + 1], mul, -use_a));
      s[c * 4 + 2] = ex2(fmaf(s[c * 4 + 2], mul, -use_b));
      s[c * 4 + 3] = ex2(fmaf(s[c * 4 + 3], mul, -use_b));
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
