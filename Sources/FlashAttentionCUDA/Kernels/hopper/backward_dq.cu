// FlashAttention backward for Hopper (sm_90a), the dQ half of the split backward: one CTA per
// query block computes dQ = scale * sum over key blocks of dS K, recomputing S = Q K^T and
// dP = dO V^T, and writes it once (no fp32 accumulator, no atomics). With the key/value kernel
// built with FA_BWD_SKIP_DQ (hopper/backward.cu) this replaces the fp32 dQ reductions, which
// take half of the d = 256 kernel's time (L2 at 85 % of its peak, run 26 of
// docs/perf-notes/cuda-hopper.md), at the price of computing S and dP twice.
//
// The host prepends the configuration #defines:
//   FA_HEAD_DIM            head dim of Q, K, V and dO (a multiple of 64, at most 256)
//   FA_DQ_BLOCK_N          keys per K/V tile (32: two stages of K and V fit beside Q and dO)
//   FA_BF16                1: bf16 storage, 0: fp16 storage
//   FA_MASK                MaskKind: 0 none, 1 causal, 2 window (common/mask.cuh)
//   FA_VARLEN              packed sequences (cu_seqlens), as in hopper/backward.cu: the rows of
//                          K and V past the sequence's keys are zeroed in shared memory
//   FA_ALIBI               the ALiBi bias (hopper/alibi.cuh): one FFMA more per score, the
//                          per-row rest folded into the row's -LSE2 term
//   FA_DROPOUT             dropout (hopper/dropout.cuh): the forward's keep mask Z in the same
//                          layout (quad_keep_bits, made while the S and dP GEMMs run) and
//                          dS = P (dP Z / (1 - p) - D)
// Sizes, strides and the window are the parameters (FAHopperBackwardDQParams).
//
// Block: 3 warpgroups for 128 query rows of one (head, batch). Warpgroup 0 is the producer
// (thread 0: Q and dO once, then K and V tiles into a 2-stage ring); warpgroups 1 and 2 own 64
// rows each and keep their dQ (64 x d, fp32) in registers. Per key tile each consumer runs
// S = Q_w K^T and dP = dO_w V^T (SS wgmma), P = exp2(S scale log2 e - LSE2), dS = P (dP - D),
// and dQ += dS K (RS wgmma: dS from registers, K read transposed).
#include "common/mask.cuh"
#include "hopper/ptx.cuh"
#include "hopper/varlen.cuh"
#include "hopper/wgmma.cuh"
#include "hopper/alibi.cuh"
#include "hopper/dropout.cuh"

namespace fa_hopper {

constexpr int D = FA_HEAD_DIM;
constexpr int BM = 128;             // query rows per block: 64 per consumer warpgroup
constexpr int BN = FA_DQ_BLOCK_N;   // keys per tile
constexpr int ST = 2;               // K/V ring depth
constexpr int PANELS = D / 64;
constexpr int SQ_BYTES = BM * D * 2;
constexpr int SK_BYTES = BN * D * 2;
constexpr int CONSUMER_THREADS = 256;
constexpr MaskKind MASK = MaskKind(FA_MASK);
static_assert(D % 64 == 0 && D <= 256, "head dim: a multiple of 64 up to 256");
static_assert(BN % 16 == 0 && BN <= 64, "key tile");

// Q and dO (loaded once), the K and V rings, and the mbarriers.
struct DQSmem {
  u32 q, dout, k0, v0, bar;

  __device__ __forceinline__ explicit DQSmem(const unsigned char* smem_raw) {
    q = (smem_u32(smem_raw) + 1023u) & ~1023u;
    dout = q + SQ_BYTES;
    k0 = dout + SQ_BYTES;
    v0 = k0 + ST * SK_BYTES;
    bar = v0 + ST * SK_BYTES;
  }

  __device__ __forceinline__ u32 k(int s) const { return k0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 v(int s) const { return v0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 qdo_full() const { return bar; }
  __device__ __forceinline__ u32 k_full(int s) const { return bar + 8 + 8 * s; }
  __device__ __forceinline__ u32 v_full(int s) const { return bar + 8 + 8 * ST + 8 * s; }
  __device__ __forceinline__ u32 k_empty(int s) const { return bar + 8 + 16 * ST + 8 * s; }
  __device__ __forceinline__ u32 v_empty(int s) const { return bar + 8 + 24 * ST + 8 * s; }

  __device__ __forceinline__ void init_barriers() const {
    mbar_init(qdo_full(), 1);
    for (int s = 0; s < ST; ++s) {
      mbar_init(k_full(s), 1);
      mbar_init(v_full(s), 1);
      mbar_init(k_empty(s), CONSUMER_THREADS);
      mbar_init(v_empty(s), CONSUMER_THREADS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
};

// The producer: Q and dO once, then the key tiles [keys.lo, keys.hi) into the K and V rings.
__device__ __forceinline__ void produce(
  const FAHopperBackwardDQParams& params, const DQSmem& sm, int m0, int head, int kv_head, int batch, BlockRange keys,
  int q_start, int k_start) {
  const int tiles = keys.count();
  mbar_expect_tx(sm.qdo_full(), 2 * SQ_BYTES);
#pragma unroll
  for (int p = 0; p < PANELS; ++p) {
    tma_load_4d(sm.q + p * BM * 128, &params.tm_q, sm.qdo_full(), p * 64, q_start + m0, head, tma_batch(batch));
    tma_load_4d(sm.dout + p * BM * 128, &params.tm_dout, sm.qdo_full(), p * 64, q_start + m0, head, tma_batch(batch));
  }
  for (int it = 0; it < tiles; ++it) {
    const int s = it % ST, n0 = (keys.lo + it) * BN;
    if (it >= ST) mbar_wait(sm.k_empty(s), ((it / ST) - 1) & 1);
    mbar_expect_tx(sm.k_full(s), SK_BYTES);
#pragma unroll
    for (int p = 0; p < PANELS; ++p)
      tma_load_4d(sm.k(s) + p * BN * 128, &params.tm_k, sm.k_full(s), p * 64, k_start + n0, kv_head, tma_batch(batch));
    if (it >= ST) mbar_wait(sm.v_empty(s), ((it / ST) - 1) & 1);
    mbar_expect_tx(sm.v_full(s), SK_BYTES);
#pragma unroll
    for (int p = 0; p < PANELS; ++p)
      tma_load_4d(sm.v(s) + p * BN * 128, &params.tm_v, sm.v_full(s), p * 64, k_start + n0, kv_head, tma_batch(batch));
  }
}

// acc (64 x BN) = A B^T over the head dim: A's 64 rows (Q or dO) at `a_rows` in panels BM * 128
// bytes apart, B's BN rows (K or V) at `b_tile` in panels BN * 128 apart. One commit group.
__device__ __forceinline__ void gemm_over_head_dim(float (&acc)[BN / 2], u32 a_rows, u32 b_tile) {
  const u64 qa = opaque_u64(desc_sw128(a_rows, 16, 1024));
  const u64 kb = opaque_u64(desc_sw128(b_tile, 16, 1024));
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const u32 panel = kk / 4, within = (kk % 4) * 32;
    Wgmma<BN>::ss(acc, qa + ((panel * BM * 128 + within) >> 4), kb + ((panel * BN * 128 + within) >> 4), kk > 0);
  }
  wg_commit();
}

// The consumers: per key tile S and dP, then P and dS in registers, then dQ += dS K; at the end
// dQ (scaled) of this thread's rows row_a and row_a + 8.
__device__ __forceinline__ void consume(
  const FAHopperBackwardDQParams& params, const DQSmem& sm, const Mask<MASK>& mask, int m0, int head, int batch,
  BlockRange keys, int q_start, int seqlen_q) {
  const int tid = threadIdx.x;
  const int cw = tid / 128 - 1;
  const int warp = (tid / 32) % 4;
  const int lane = tid % 32;
  const int tq = lane % 4;
  const int row_a = m0 + cw * 64 + warp * 16 + lane / 4;  // this thread's query rows: row_a, row_a + 8
  const int row_b = row_a + 8;
  const float* __restrict__ lse2 = params.lse2;
  const float* __restrict__ delta = params.delta;
  // The statistics keep params.seqlen_q rows per (batch, head); seqlen_q bounds the sequence.
  const long long stat_row =
    stats_row(FA_VARLEN ? params.packed_rows : 0, batch, params.heads_q, head, params.seqlen_q, q_start, 0);
  // Padded rows: LSE2 = +inf makes P = 0 there (TMA has zero-filled their Q and dO).
  const float lse_a = row_a < seqlen_q ? lse2[stat_row + row_a] : FA_INF;
  const float lse_b = row_b < seqlen_q ? lse2[stat_row + row_b] : FA_INF;
  const float d_a = row_a < seqlen_q ? delta[stat_row + row_a] : 0.f;
  const float d_b = row_b < seqlen_q ? delta[stat_row + row_b] : 0.f;
#if FA_DROPOUT
  const Dropout dropout(params.dropout, batch, head);
#endif
#if FA_ALIBI
  const float alibi_slope = alibi_slope_log2(params.alibi_slopes, params.alibi_batch_stride, batch, head);
#endif

  float dq[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dq[i] = 0.f;
  float s[BN / 2], dp[BN / 2];
  u32 ds[BN / 16][4];

  const int tiles = keys.count();
  if (tiles > 0) mbar_wait(sm.qdo_full(), 0);
  const u32 q_rows = sm.q + cw * 64 * 128;
  const u32 do_rows = sm.dout + cw * 64 * 128;
  for (int it = 0; it < tiles; ++it) {
    const int st = it % ST;
    const u32 phase = (it / ST) & 1;
    const int n0 = (keys.lo + it) * BN;

#if FA_VARLEN
    // The sequence's last key tile: its rows past the keys (next sequence, unused rows) to zero.
    if (n0 + BN > mask.seqlen_k) {
      mbar_wait(sm.k_full(st), phase);
      mbar_wait(sm.v_full(st), phase);
      zero_tile_rows(sm.k(st), BN, PANELS, mask.seqlen_k - n0, tid - 128, CONSUMER_THREADS);
      zero_tile_rows(sm.v(st), BN, PANELS, mask.seqlen_k - n0, tid - 128, CONSUMER_THREADS);
      fence_async_shared();
      named_sync(3, CONSUMER_THREADS);
    }
#endif
    // S = Q_w K^T and dP = dO_w V^T over the head dim (K-major operands).
    mbar_wait(sm.k_full(st), phase);
    gemm_over_head_dim(s, q_rows, sm.k(st));
    mbar_wait(sm.v_full(st), phase);
    gemm_over_head_dim(dp, do_rows, sm.v(st));
#if FA_DROPOUT
    // The tile's keep bits (bit 2c + e: key n0 + 8c + 2 tq + e of rows a and b), while the two
    // GEMMs run.
    u64 keep_a, keep_b;
    quad_keep_bits<BN / 8>(dropout, row_a, n0 >> 3, tq, keep_a, keep_b);
#endif

    // P = exp2(S scale log2(e) - LSE2), zero where hidden: the visible keys of each row as
    // column offsets from this thread's first column n0 + 2 tq.
    const ColumnRange a = mask.key_columns(row_a, n0 + tq * 2), b = mask.key_columns(row_b, n0 + tq * 2);
    wg_wait<1>();
    fence_regs(s);
#if FA_ALIBI
    // With d = row + offset - key = e_a - k (k = 8 c + e): on a warp whose pairs lie on one side
    // of the diagonal the bias is side slope k - side slope e_a, the second part joining -LSE2;
    // across the diagonal -slope |e_a - k|.
    const int side = alibi_side<MASK>(row_a & ~15, 16, n0, BN, mask.offset);
    const int e_a = row_a + mask.offset - (n0 + tq * 2);
    if (side != 0) {
      const float signed_slope = side > 0 ? alibi_slope : -alibi_slope;
      const float ua = fmaf(-signed_slope, (float)e_a, -lse_a);
      const float ub = fmaf(-signed_slope, (float)(e_a + 8), -lse_b);
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = c * 8 + e;
          const float k = (float)j;
          const float pa = ex2(fmaf(signed_slope, k, fmaf(s[c * 4 + e], params.scale_log2, ua)));
          const float pb = ex2(fmaf(signed_slope, k, fmaf(s[c * 4 + 2 + e], params.scale_log2, ub)));
          s[c * 4 + e] = a.hides(j) ? 0.f : pa;
          s[c * 4 + 2 + e] = b.hides(j) ? 0.f : pb;
        }
      }
    } else {
      const float fa = (float)e_a, fb = (float)(e_a + 8);
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = c * 8 + e;
          const float k = (float)j;
          const float pa = ex2(fmaf(-alibi_slope, fabsf(fa - k), fmaf(s[c * 4 + e], params.scale_log2, -lse_a)));
          const float pb = ex2(fmaf(-alibi_slope, fabsf(fb - k), fmaf(s[c * 4 + 2 + e], params.scale_log2, -lse_b)));
          s[c * 4 + e] = a.hides(j) ? 0.f : pa;
          s[c * 4 + 2 + e] = b.hides(j) ? 0.f : pb;
        }
      }
    }
#else
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int j = c * 8 + e;
        const float pa = ex2(fmaf(s[c * 4 + e], params.scale_log2, -lse_a));
        const float pb = ex2(fmaf(s[c * 4 + 2 + e], params.scale_log2, -lse_b));
        s[c * 4 + e] = a.hides(j) ? 0.f : pa;
        s[c * 4 + 2 + e] = b.hides(j) ? 0.f : pb;
      }
    }
#endif
    // dS = P (dP - D); with dropout P (dP Z - D), Z = 1 / (1 - p) where kept, 0 where dropped.
    wg_wait<0>();
    fence_regs(dp);
    mbar_arrive(sm.v_empty(st));
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
#if FA_DROPOUT
        const float za = (keep_a >> (2 * c + e)) & 1u ? dropout.scale : 0.f;
        const float zb = (keep_b >> (2 * c + e)) & 1u ? dropout.scale : 0.f;
        dp[c * 4 + e] = s[c * 4 + e] * fmaf(dp[c * 4 + e], za, -d_a);
        dp[c * 4 + 2 + e] = s[c * 4 + 2 + e] * fmaf(dp[c * 4 + 2 + e], zb, -d_b);
#else
        dp[c * 4 + e] = s[c * 4 + e] * (dp[c * 4 + e] - d_a);
        dp[c * 4 + 2 + e] = s[c * 4 + 2 + e] * (dp[c * 4 + 2 + e] - d_b);
#endif
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

  // The epilogue: dQ (scaled), rows row_a and row_b.
  u16* __restrict__ dq_out = params.dq;
  u16* out = dq_out + batch * params.dq_strides.batch + head * params.dq_strides.head
             + q_start * params.dq_strides.row + tq * 2;
  const long long row_stride = params.dq_strides.row;
  const float scale = params.scale;
#pragma unroll
  for (int c = 0; c < D / 8; ++c) {
    if (row_a < seqlen_q)
      *reinterpret_cast<u32*>(out + row_a * row_stride + c * 8) = pack2(dq[c * 4 + 0] * scale, dq[c * 4 + 1] * scale);
    if (row_b < seqlen_q)
      *reinterpret_cast<u32*>(out + row_b * row_stride + c * 8) = pack2(dq[c * 4 + 2] * scale, dq[c * 4 + 3] * scale);
  }
}

extern "C" __global__ void __launch_bounds__(384, 1) flash_bwd_dq_hopper(
  const __grid_constant__ FAHopperBackwardDQParams params) {
  extern __shared__ unsigned char smem_raw[];
  const DQSmem sm(smem_raw);
  int query_block = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
#if FA_VARLEN
  // The packed schedule (common/varlen_schedule.cu): this block's entry names its query block.
  if (params.schedule) {
    const VarlenWork item = varlen_work(params.schedule, blockIdx.x);
    if (item.sequence < 0) return;
    query_block = item.unit;
    head = item.head;
    batch = item.sequence;
  }
#endif
  const int m0 = query_block * BM;
  const SequenceRows seq_q = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, params.seqlen_q);
  const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, batch, params.seqlen_k);
#if FA_VARLEN
  if (m0 >= seq_q.used) return;  // the grid covers the longest sequence; this one is shorter
#endif
  const Mask<MASK> mask(seq_q.used, seq_k.used, params.window_left, params.window_right);
  // The key tiles that some row of the block can see.
  const BlockRange keys = mask.key_blocks<BM, BN>(m0);
  if (threadIdx.x == 0) sm.init_barriers();
  __syncthreads();
  if (threadIdx.x / 128 == 0) {
    setmaxnreg_dec<24>();
    if (threadIdx.x == 0 && keys.count() > 0)
      produce(params, sm, m0, head, head / params.group, batch, keys, seq_q.start, seq_k.start);
    return;
  }
  setmaxnreg_inc<240>();
  consume(params, sm, mask, m0, head, batch, keys, seq_q.start, seq_q.used);
}

}  // namespace fa_hopper
