#include "hopper/common.cuh"
// FlashAttention backward for Hopper (sm_90a), the dQ half of the split backward: one CTA per
// query block computes dQ = scale * sum over key blocks of dS K, recomputing S = Q K^T and
// dP = dO V^T, and writes it once (no fp32 accumulator, no atomics). With the key/value kernel
// built with FA_BWD_SKIP_DQ (hopper_backward.cu) this replaces the fp32 dQ reductions, which
// take half of the d = 256 kernel's time (L2 at 85 % of its peak, benchmarks/bwd run 26), at the
// price of computing S and dP twice.
//
// The host prepends the configuration #defines and hopper_common.cuh:
//   FA_HEAD_DIM            head dim of Q, K, V and dO (a multiple of 64, at most 256)
//   FA_DQ_BLOCK_N          keys per K/V tile (32: two stages of K and V fit beside Q and dO)
//   FA_FP16                1: fp16 storage, 0: bf16 storage
//   FA_CAUSAL, FA_WINDOW   mask kinds (causal is the window (left, 0), bottom-right aligned)
//
// Block: 3 warpgroups for 128 query rows of one (head, batch). Warpgroup 0 is the producer
// (thread 0: Q and dO once, then K and V tiles into a 2-stage ring); warpgroups 1 and 2 own 64
// rows each and keep their dQ (64 x d, fp32) in registers. Per key tile each consumer runs
// S = Q_w K^T and dP = dO_w V^T (SS wgmma), P = exp2(S scale log2 e - LSE2), dS = P (dP - D),
// and dQ += dS K (RS wgmma: dS from registers, K read transposed).

namespace fa_hopper {

constexpr int D = FA_HEAD_DIM;
constexpr int BM = 128;             // query rows per block: 64 per consumer warpgroup
constexpr int BN = FA_DQ_BLOCK_N;   // keys per tile
constexpr int ST = 2;               // K/V ring depth
constexpr int PANELS = D / 64;
constexpr int SQ_BYTES = BM * D * 2;
constexpr int SK_BYTES = BN * D * 2;
constexpr int CONSUMER_THREADS = 256;
static_assert(D % 64 == 0 && D <= 256, "head dim: a multiple of 64 up to 256");
static_assert(BN % 16 == 0 && BN <= 64, "key tile");

struct Smem {
  u32 q, dout, k0, v0, bar;
  __device__ __forceinline__ u32 k(int s) const { return k0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 v(int s) const { return v0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 qdo_full() const { return bar; }
  __device__ __forceinline__ u32 k_full(int s) const { return bar + 8 + 8 * s; }
  __device__ __forceinline__ u32 v_full(int s) const { return bar + 8 + 8 * ST + 8 * s; }
  __device__ __forceinline__ u32 k_empty(int s) const { return bar + 8 + 16 * ST + 8 * s; }
  __device__ __forceinline__ u32 v_empty(int s) const { return bar + 8 + 24 * ST + 8 * s; }
};

extern "C" __global__ void __launch_bounds__(384, 1) flash_bwd_dq_hopper(
  const __grid_constant__ FAHopperBackwardDQParams params) {
  const TmaMap& tm_q = params.tm_q;
  const TmaMap& tm_k = params.tm_k;
  const TmaMap& tm_v = params.tm_v;
  const TmaMap& tm_do = params.tm_dout;
  const float* __restrict__ lse2 = params.lse2;
  const float* __restrict__ delta = params.delta;
  void* __restrict__ dq_ptr = params.dq;
  const long long dq_stride_b = params.dq_strides.batch, dq_stride_s = params.dq_strides.row, dq_stride_h = params.dq_strides.head;
  const int seqlen_q = params.seqlen_q, seqlen_k = params.seqlen_k, heads_q = params.heads_q, group = params.group;
  const float scale = params.scale, scale_log2 = params.scale_log2;
  const int window_left = params.window_left, window_right = params.window_right;
  extern __shared__ unsigned char smem_raw[];
  Smem sm;
  sm.q = (smem_u32(smem_raw) + 1023u) & ~1023u;
  sm.dout = sm.q + SQ_BYTES;
  sm.k0 = sm.dout + SQ_BYTES;
  sm.v0 = sm.k0 + ST * SK_BYTES;
  sm.bar = sm.v0 + ST * SK_BYTES;

  const int tid = threadIdx.x;
  const int wg = tid / 128;
  const int m0 = blockIdx.x * BM, head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / group;
  const int offset = seqlen_k - seqlen_q;
#if FA_CAUSAL
  const int left = window_left, right = 0;
#elif FA_WINDOW
  const int left = window_left, right = window_right;
#else
  const int left = -1, right = -1;
#endif
  // The key tiles that some row of the block can see: [n_lo, n_hi).
  int n_lo = 0, n_hi = (seqlen_k + BN - 1) / BN;
  if (right >= 0) {
    const int last = m0 + BM - 1 + offset + right;
    n_hi = min(n_hi, last < 0 ? 0 : last / BN + 1);
  }
  if (left >= 0) {
    const int first = m0 + offset - left;
    n_lo = first <= 0 ? 0 : first / BN;
  }
  const int tiles = max(0, n_hi - n_lo);

  if (tid == 0) {
    mbar_init(sm.qdo_full(), 1);
    for (int s = 0; s < ST; ++s) {
      mbar_init(sm.k_full(s), 1);
      mbar_init(sm.v_full(s), 1);
      mbar_init(sm.k_empty(s), CONSUMER_THREADS);
      mbar_init(sm.v_empty(s), CONSUMER_THREADS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---------------- producer ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
    if (tid == 0 && tiles > 0) {
      mbar_expect_tx(sm.qdo_full(), 2 * SQ_BYTES);
#pragma unroll
      for (int p = 0; p < PANELS; ++p) {
        tma_load_4d(sm.q + p * BM * 128, &tm_q, sm.qdo_full(), p * 64, m0, head, batch);
        tma_load_4d(sm.dout + p * BM * 128, &tm_do, sm.qdo_full(), p * 64, m0, head, batch);
      }
      for (int it = 0; it < tiles; ++it) {
        const int s = it % ST, n0 = (n_lo + it) * BN;
        if (it >= ST) mbar_wait(sm.k_empty(s), ((it / ST) - 1) & 1);
        mbar_expect_tx(sm.k_full(s), SK_BYTES);
#pragma unroll
        for (int p = 0; p < PANELS; ++p) tma_load_4d(sm.k(s) + p * BN * 128, &tm_k, sm.k_full(s), p * 64, n0, kv_head, batch);
        if (it >= ST) mbar_wait(sm.v_empty(s), ((it / ST) - 1) & 1);
        mbar_expect_tx(sm.v_full(s), SK_BYTES);
#pragma unroll
        for (int p = 0; p < PANELS; ++p) tma_load_4d(sm.v(s) + p * BN * 128, &tm_v, sm.v_full(s), p * 64, n0, kv_head, batch);
      }
    }
    return;
  }

  // ---------------- consumers ----------------
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
  const int cw = wg - 1;
  const int warp = (tid / 32) % 4;
  const int lane = tid % 32;
  const int tq = lane % 4;
  const int row_a = m0 + cw * 64 + warp * 16 + lane / 4;  // this thread's query rows: row_a, row_a + 8
  const int row_b = row_a + 8;
  const long long stat_row = ((long long)batch * heads_q + head) * seqlen_q;
  // Padded rows: LSE2 = +inf makes P = 0 there (TMA has zero-filled their Q and dO).
  const float lse_a = row_a < seqlen_q ? lse2[stat_row + row_a] : FA_INF;
  const float lse_b = row_b < seqlen_q ? lse2[stat_row + row_b] : FA_INF;
  const float d_a = row_a < seqlen_q ? delta[stat_row + row_a] : 0.f;
  const float d_b = row_b < seqlen_q ? delta[stat_row + row_b] : 0.f;

  float dq[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dq[i] = 0.f;
  float s[BN / 2], dp[BN / 2];
  u32 ds[BN / 16][4];

  if (tiles > 0) mbar_wait(sm.qdo_full(), 0);
  const u32 q_rows = sm.q + cw * 64 * 128;
  const u32 do_rows = sm.dout + cw * 64 * 128;
  for (int it = 0; it < tiles; ++it) {
    const int st = it % ST;
    const u32 phase = (it / ST) & 1;
    const int n0 = (n_lo + it) * BN;

    // S = Q_w K^T and dP = dO_w V^T over the head dim (K-major operands).
    auto gemm = [&](float (&acc)[BN / 2], u32 a_rows, u32 b_tile) {
      const u64 qa = opaque_u64(desc_sw128(a_rows, 16, 1024));
      const u64 kb = opaque_u64(desc_sw128(b_tile, 16, 1024));
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const u32 panel = kk / 4, within = (kk % 4) * 32;
        Wgmma<BN>::ss(acc, qa + ((panel * BM * 128 + within) >> 4), kb + ((panel * BN * 128 + within) >> 4), kk > 0);
      }
      wg_commit();
    };
    mbar_wait(sm.k_full(st), phase);
    gemm(s, q_rows, sm.k(st));
    mbar_wait(sm.v_full(st), phase);
    gemm(dp, do_rows, sm.v(st));

    // Visible keys of each row as column offsets from this thread's first column n0 + 2 tq.
    int hi_a = seqlen_k - 1 - (n0 + tq * 2), hi_b = hi_a, lo_a = -(1 << 30), lo_b = -(1 << 30);
#if FA_CAUSAL || FA_WINDOW
    if (right >= 0) {
      hi_a = min(hi_a, row_a + offset + right - (n0 + tq * 2));
      hi_b = min(hi_b, row_b + offset + right - (n0 + tq * 2));
    }
    if (left >= 0) {
      lo_a = row_a + offset - left - (n0 + tq * 2);
      lo_b = row_b + offset - left - (n0 + tq * 2);
    }
#endif
    wg_wait<1>();
    fence_regs(s);
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int j = c * 8 + e;
        const float pa = ex2(fmaf(s[c * 4 + e], scale_log2, -lse_a));
        const float pb = ex2(fmaf(s[c * 4 + 2 + e], scale_log2, -lse_b));
        s[c * 4 + e] = j > hi_a || j < lo_a ? 0.f : pa;
        s[c * 4 + 2 + e] = j > hi_b || j < lo_b ? 0.f : pb;
      }
    }
    wg_wait<0>();
    fence_regs(dp);
    mbar_arrive(sm.v_empty(st));
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        dp[c * 4 + e] = s[c * 4 + e] * (dp[c * 4 + e] - d_a);
        dp[c * 4 + 2 + e] = s[c * 4 + 2 + e] * (dp[c * 4 + 2 + e] - d_b);
      }
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      ds[kk][0] = pack2(dp[kk * 8 + 0], dp[kk * 8 + 1]);
      ds[kk][1] = pack2(dp[kk * 8 + 2], dp[kk * 8 + 3]);
      ds[kk][2] = pack2(dp[kk * 8 + 4], dp[kk * 8 + 5]);
      ds[kk][3] = pack2(dp[kk * 8 + 6], dp[kk * 8 + 7]);
    }
    // dQ += dS K: dS from registers; K (keys x d) is the transposed (MN-major) B, N = d.
    {
      const u64 kb = opaque_u64(desc_sw128(sm.k(st), BN * 128, 1024));
      fence_regs(dq);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) Wgmma<D>::rs(dq, ds[kk], kb + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    }
    wg_wait<0>();
    fence_regs(dq);
    mbar_arrive(sm.k_empty(st));
  }

  // ---------------- epilogue: dQ (scaled), rows row_a and row_b ----------------
  u16* out = reinterpret_cast<u16*>(dq_ptr) + batch * dq_stride_b + head * dq_stride_h + tq * 2;
#pragma unroll
  for (int c = 0; c < D / 8; ++c) {
    if (row_a < seqlen_q)
      *reinterpret_cast<u32*>(out + row_a * dq_stride_s + c * 8) = pack2(dq[c * 4 + 0] * scale, dq[c * 4 + 1] * scale);
    if (row_b < seqlen_q)
      *reinterpret_cast<u32*>(out + row_b * dq_stride_s + c * 8) = pack2(dq[c * 4 + 2] * scale, dq[c * 4 + 3] * scale);
  }
}

}  // namespace fa_hopper
