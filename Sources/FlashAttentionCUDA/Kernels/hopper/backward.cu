// FlashAttention backward for Hopper (sm_90a): dK and dV per key block on wgmma, dQ added into an
// fp32 accumulator. FA3's design without its dQ warpgroup: TMA + mbarrier ring for Q and dO, K/V
// resident, the transposed products S^T = K Q^T and dP^T = V dO^T so that P^T and dS^T come out
// of the accumulators already in the register layout of a wgmma A operand.
//
// The host prepends the configuration #defines:
//   FA_HEAD_DIM        head dim of Q, K, V and dO (64, 128 or 256)
//   FA_Q_STAGES        Q/dO buffers (2: the next step's loads run during this step)
//   FA_BF16            1: bf16 storage, 0: fp16 storage
//   FA_MASK            MaskKind: 0 none, 1 causal, 2 window (common/mask.cuh)
//   FA_BWD_SKIP_DQ     1: no dQ here; flash_bwd_dq_hopper (hopper/backward_dq.cu) computes it
//                      without atomics (the split backward)
//   FA_DQ_FIRST        1 (with FA_DQ_BULK): a step issues its dQ GEMM before dV and dK, waits
//                      for dQ alone and stages it while dV and dK run
//   FA_DQ_BULK         1 (fused form, fixed length, d = 64/128): each consumer warpgroup stages
//                      its 64 x d/2 piece of a step's dQ in shared memory and one thread adds it
//                      with one bulk reduction (cp.reduce.async.bulk), which the TMA unit carries
//                      out while the warpgroup goes on; the accumulator is then laid out in those
//                      pieces (dq_piece_index), as the sm80 kernels' FA_DQ_BULK 1 with a
//                      64-row, two-"warp" tile, so the same convert kernel undoes it. 0: each
//                      thread adds its fragments with red.global.add.v2.f32.
//   FA_VARLEN          packed sequences (cu_seqlens): the batch index picks a sequence, whose own
//                      lengths bound the walk and the mask; the maps describe the packed tensors
//                      as one batch entry, the scratch keeps seqlen_q = the longest sequence's
//                      rows per (batch, head) (params.packed_rows > 0: each sequence at its own
//                      packed rows instead), and rows a tile reads past its sequence are zeroed
//                      in shared memory (hopper/varlen.cuh); with params.schedule the grid
//                      is the packed list of key blocks (common/varlen_schedule.cu)
//   FA_ALIBI           the ALiBi bias (hopper/alibi.cuh): S^T's accumulator starts from the bias
//                      (in raw-score units) and the GEMM adds Q K^T onto it, so the exponent is
//                      the plain one; the stats warp stages each step's slope beside LSE2 and D
//   FA_ALIBI_MMA       with FA_ALIBI (bf16): the bias as one more k-step of S^T on the tensor
//                      cores instead (hopper/alibi.cuh); warps the diagonal crosses add the
//                      |.| form after the GEMM
//   FA_DROPOUT         dropout on P (hopper/dropout.cuh; d = 64 and 128): each step regenerates
//                      the forward's keep mask Z (transposed_keep_bits, two Philox calls a lane
//                      made while the S^T and dP^T GEMMs run), dS^T = P^T (dP^T Z / (1 - p) - D)
//                      (FA2's rule, D from the dropped output), dV's P^T zeroed where dropped
//                      and dV scaled by 1 / (1 - p) once in the epilogue
// Sizes, strides and the window are the parameters (FAHopperBackwardParams).
//
// Block: 3 warpgroups for one key block of 128 keys, one (kv head, batch). Warpgroup 0 is the
// producer: one thread loads K and V once, then Q and dO of every step (a query block of 64 rows
// of one query head of the GQA group) into a ring. Warpgroups 1 and 2 own 64 keys each and keep
// their dK and dV (64 x d, fp32) in registers for the whole walk. Per step each consumer:
//   S^T  = K_w Q^T            (SS wgmma, 64 x 64)     P^T  = exp2(S^T * scale log2 e - LSE2)
//   dP^T = V_w dO^T           (SS wgmma, 64 x 64)     dS^T = P^T * (dP^T - D)
//   dV  += P^T dO             (RS wgmma, P^T from registers, dO read transposed)
//   dK  += dS^T Q             (RS wgmma)
// and stores dS^T transposed (stmatrix) into shared memory as dS, [query][key]. After a named
// barrier both consumers compute half of dQ = dS K each (SS wgmma, K read transposed; 64 x d/2)
// and add it into the accumulator [batch, seqlen_q, heads_q, d] with red.global.add.v2.f32;
// flash_backward_convert_dq (sm80/backward.cu, compiled for that layout) scales and converts.
// Keys and queries past the sequence ends need no mask on S for the sums: TMA zero-fills their
// rows, LSE2 is +inf for padded query columns, and rows of dK/dV past seqlen_k are not stored.
// The tail key block still masks its P, so that a zero score against a very small LSE cannot
// overflow into the dQ sum.

#include "common/mask.cuh"
#include "hopper/ptx.cuh"
#include "hopper/scheduler.cuh"
#include "hopper/varlen.cuh"
#include "hopper/wgmma.cuh"
#include "hopper/alibi.cuh"
#include "hopper/dropout.cuh"

namespace fa_hopper {

#ifndef FA_Q_STAGES
#define FA_Q_STAGES 2
#endif
#ifndef FA_BWD_SKIP_DQ
#define FA_BWD_SKIP_DQ 0
#endif
#ifndef FA_WIDE_DQ_PASSES
#define FA_WIDE_DQ_PASSES 2
#endif
#ifndef FA_DQ_BULK
#define FA_DQ_BULK 0
#endif
#ifndef FA_DQ_FIRST
#define FA_DQ_FIRST 0
#endif
#if FA_ALIBI_MMA && (!FA_ALIBI || !FA_BF16)
#error "FA_ALIBI_MMA: with FA_ALIBI, bf16"
#endif

constexpr int D = FA_HEAD_DIM;
// d = 256: dK and dV of 64 keys x 256 columns do not fit one warpgroup's registers, so both
// consumer warpgroups share one block of 64 keys, each owning half of the head dim (see below).
constexpr bool WIDE = D == 256;
constexpr int BM = 64;                     // queries per step
constexpr int BN = WIDE ? 64 : 128;        // keys per block (64 per consumer warpgroup if not WIDE)
constexpr int QST = FA_Q_STAGES;
constexpr int PANELS = D / 64;             // 64-column (128-byte) panels per row
constexpr int SQ_BYTES = BM * D * 2;
constexpr int SK_BYTES = BN * D * 2;
constexpr int SDS_BYTES = BM * BN * 2;
constexpr int SP_BYTES = WIDE ? SDS_BYTES : 0;  // P in shared memory (WIDE only)
constexpr int CONSUMER_THREADS = 256;
constexpr MaskKind MASK = MaskKind(FA_MASK);
// Floats of a stage's row statistics: LSE2 and D (64 each); with ALiBi also the step's slope in
// raw-score units (padded to 16 bytes).
constexpr int STATS_FLOATS = FA_ALIBI ? 2 * BM + 4 : 2 * BM;
static_assert(D == 64 || D == 128 || D == 256, "the Hopper backward covers head dims 64, 128 and 256");
// d = 256 passes P^T through shared memory, which dV would need dropped and dS^T undropped.
static_assert(!(WIDE && FA_DROPOUT), "dropout: head dims 64 and 128 (d = 256 runs FlashAttention-2's backward)");
static_assert(!FA_DQ_BULK || (!WIDE && !FA_BWD_SKIP_DQ && !FA_VARLEN),
              "bulk dQ reductions: the fused form at d = 64/128, fixed length");
static_assert(!FA_DQ_FIRST || FA_DQ_BULK, "dQ first: with bulk dQ reductions");
// The bulk reductions' staging: each consumer warpgroup's 64 x d/2 dQ piece (fp32).
constexpr int DQ_PIECE_FLOATS = BM * (D / 2);
constexpr int SDQ_BYTES = FA_DQ_BULK ? 2 * DQ_PIECE_FLOATS * 4 : 0;
// Within a piece, row r's 8-column chunks are permuted (chunk XOR r mod DQ_SWIZZLE) so that one
// warp's fragment stores (8 rows x 32 bytes) spread over all banks; the convert kernel's
// dq_piece_offset (sm80/backward.cu, TD_Q = d/2) undoes the same permutation.
constexpr int DQ_SWIZZLE = (D / 2 / 8) % 8 == 0 ? 8 : 4;

// K and V (loaded once), QST buffers of Q, dO and their LSE2/D rows, two dS buffers (d = 256:
// and two P buffers), the dQ pieces (FA_DQ_BULK), and the mbarriers.
struct BackwardSmem {
  u32 k, v, q0, do0, ds0, p0, dq0, stats0, bar;
  u32 alibi_panel;  // FA_ALIBI_MMA: the bias k-step's B (hopper/alibi.cuh)

  __device__ __forceinline__ explicit BackwardSmem(const unsigned char* smem_raw) {
    k = (smem_u32(smem_raw) + 1023u) & ~1023u;
    v = k + SK_BYTES;
    q0 = v + SK_BYTES;
    do0 = q0 + QST * SQ_BYTES;
    ds0 = do0 + QST * SQ_BYTES;
    p0 = ds0 + 2 * SDS_BYTES;
    dq0 = p0 + 2 * SP_BYTES;
    stats0 = dq0 + SDQ_BYTES;
    bar = stats0 + QST * STATS_FLOATS * 4;
    alibi_panel = (bar + 8 + 32 * QST + 127u) & ~127u;
  }

  __device__ __forceinline__ u32 q(int s) const { return q0 + s * SQ_BYTES; }
  __device__ __forceinline__ u32 dout(int s) const { return do0 + s * SQ_BYTES; }
  __device__ __forceinline__ u32 ds(int s) const { return ds0 + s * SDS_BYTES; }
  __device__ __forceinline__ u32 p(int s) const { return p0 + s * SP_BYTES; }
  // Consumer warpgroup cw's dQ piece (FA_DQ_BULK).
  __device__ __forceinline__ u32 dq_piece(int cw) const { return dq0 + cw * DQ_PIECE_FLOATS * 4; }
  // LSE2 (64 floats) then D (64 floats) of stage s's query rows (ALiBi: see STATS_FLOATS).
  __device__ __forceinline__ u32 stats(int s) const { return stats0 + s * STATS_FLOATS * 4; }
  __device__ __forceinline__ u32 kv_full() const { return bar; }
  __device__ __forceinline__ u32 q_full(int s) const { return bar + 8 + 8 * s; }
  __device__ __forceinline__ u32 do_full(int s) const { return bar + 8 + 8 * QST + 8 * s; }
  __device__ __forceinline__ u32 empty(int s) const { return bar + 8 + 16 * QST + 8 * s; }
  __device__ __forceinline__ u32 stats_full(int s) const { return bar + 8 + 24 * QST + 8 * s; }

  __device__ __forceinline__ void init_barriers() const {
    mbar_init(kv_full(), 1);
    for (int s = 0; s < QST; ++s) {
      mbar_init(q_full(s), 1);
      mbar_init(do_full(s), 1);
      mbar_init(empty(s), CONSUMER_THREADS);
      mbar_init(stats_full(s), 32);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }

  // Stage s's LSE2 and D rows as a pointer (for the warp that writes them and the consumers).
  __device__ __forceinline__ float* stats_rows(unsigned char* smem_raw, int s) const {
    return reinterpret_cast<float*>(smem_raw + (stats(s) - smem_u32(smem_raw)));
  }
};

// The scratch layout's packed rows (common/varlen.cuh): 0 (padded) unless FA_VARLEN.
__device__ __forceinline__ int packed_rows(const FAHopperBackwardParams& params) {
  return FA_VARLEN ? params.packed_rows : 0;
}

// This block's sequence: its first rows in the packed tensors (0 for a fixed-length batch) and
// its lengths (the parameters' for a fixed-length batch).
struct BackwardSequence {
  int q_start, k_start, seqlen_q, seqlen_k;
};

// FA_VARLEN: zeroes the rows of a step's Q and dO past the sequence's queries (a ragged last
// query block), by all consumer threads, before any GEMM of the step reads them.
__device__ __forceinline__ void clear_query_tail(const BackwardSmem& sm, int st, u32 phase, int m0, int seqlen_q) {
#if FA_VARLEN
  if (m0 + BM > seqlen_q) {
    mbar_wait(sm.q_full(st), phase);
    mbar_wait(sm.do_full(st), phase);
    zero_tile_rows(sm.q(st), BM, PANELS, seqlen_q - m0, threadIdx.x - 128, CONSUMER_THREADS);
    zero_tile_rows(sm.dout(st), BM, PANELS, seqlen_q - m0, threadIdx.x - 128, CONSUMER_THREADS);
    fence_async_shared();
    named_sync(3, CONSUMER_THREADS);
  }
#endif
}

// FA_VARLEN: zeroes the rows of K and V past the sequence's keys (a ragged last key block), once
// K and V have landed.
__device__ __forceinline__ void clear_key_tail(const BackwardSmem& sm, int n0, int seqlen_k) {
#if FA_VARLEN
  if (n0 + BN > seqlen_k) {
    zero_tile_rows(sm.k, BN, PANELS, seqlen_k - n0, threadIdx.x - 128, CONSUMER_THREADS);
    zero_tile_rows(sm.v, BN, PANELS, seqlen_k - n0, threadIdx.x - 128, CONSUMER_THREADS);
    fence_async_shared();
    named_sync(3, CONSUMER_THREADS);
  }
#endif
}

// Visible query columns of the key rows key_a and key_b, as offsets j = 8c + e from the thread's
// first column `first` = m0 + 2 tq (the mask's transposed form): each element then costs two
// compares against compile-time offsets. Everything is visible in a step that needs no mask.
struct ColumnBounds {
  ColumnRange a, b;
};

__device__ __forceinline__ ColumnBounds column_bounds(
  const Mask<MASK>& mask, bool masked, int key_a, int key_b, int first) {
  ColumnBounds bounds;
  bounds.a.lo = bounds.b.lo = -(1 << 30);
  bounds.a.hi = bounds.b.hi = 1 << 30;
  if (masked) {
    bounds.a = mask.query_columns(key_a, first);
    bounds.b = mask.query_columns(key_b, first);
  }
  return bounds;
}

// S^T (in `acc`, 64 keys x 64 queries) to P^T = exp2(S^T scale log2(e) - LSE2), zero where hidden.
__device__ __forceinline__ void exponentiate(float (&acc)[BM / 2], const float* lse, const ColumnBounds& b,
                                             float scale_log2, int tq) {
#pragma unroll
  for (int c = 0; c < BM / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int j = c * 8 + e;
      const float l = lse[c * 8 + tq * 2 + e];
      const float pa = ex2(fmaf(acc[c * 4 + e], scale_log2, -l));
      const float pb = ex2(fmaf(acc[c * 4 + 2 + e], scale_log2, -l));
      acc[c * 4 + e] = b.a.hides(j) ? 0.f : pa;
      acc[c * 4 + 2 + e] = b.b.hides(j) ? 0.f : pb;
    }
  }
}

// A 64 x 64 accumulator as 16-bit wgmma A fragments (one per k-step of 16 columns).
__device__ __forceinline__ void to_fragments(const float (&acc)[BM / 2], u32 (&frag)[BM / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < BM / 16; ++kk) {
    frag[kk][0] = pack2(acc[kk * 8 + 0], acc[kk * 8 + 1]);
    frag[kk][1] = pack2(acc[kk * 8 + 2], acc[kk * 8 + 3]);
    frag[kk][2] = pack2(acc[kk * 8 + 4], acc[kk * 8 + 5]);
    frag[kk][3] = pack2(acc[kk * 8 + 6], acc[kk * 8 + 7]);
  }
}

// This lane's address in an x4 transposed store or load of k-step kk between the fragments of a
// warp's 16 key rows (keys 16 warp ..) and a [query][key] panel of 64 keys (128-byte swizzle):
// matrix i = lane / 8 covers queries 8 (2 kk + i / 2) .. +7 and keys 16 warp + 8 (i % 2) .. +7.
__device__ __forceinline__ u32 transposed_address(u32 panel, int kk, int warp, int lane) {
  const int i = lane / 8, j = lane % 8;
  const int qrow = (2 * kk + i / 2) * 8 + j;
  return panel + qrow * 128 + (((u32)(2 * warp + (i % 2)) ^ (u32)(qrow & 7)) * 16);
}

// acc (64 x 64) = A B^T over the head dim: A's 64 rows start at `a_rows` in panels BN * 128
// bytes apart (K or V), B's at `b_rows` in panels BM * 128 apart (Q or dO). One commit group.
// ADD: acc += A B^T instead (the ALiBi bias already in acc).
template <bool ADD = false>
__device__ __forceinline__ void gemm_over_head_dim(float (&acc)[BM / 2], u32 a_rows, u32 b_rows) {
  const u64 ka = opaque_u64(desc_sw128(a_rows, 16, 1024));
  const u64 qb = opaque_u64(desc_sw128(b_rows, 16, 1024));
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const u32 panel = kk / 4, within = (kk % 4) * 32;
    Wgmma<BM>::ss(acc, ka + ((panel * BN * 128 + within) >> 4), qb + ((panel * BM * 128 + within) >> 4), ADD || kk > 0);
  }
  wg_commit();
}

#if FA_ALIBI
// S^T's accumulator set to the ALiBi bias of the thread's key rows key_a and key_a + 8 against
// queries m0 + 2 tq + k (k = 8 c + e), in raw-score units (`slope` = slope / scale): with
// d = query + offset - key = d_a + k, -side slope (d_a + k) on a warp whose pairs lie on one
// side of the diagonal (one FFMA per score, the column an immediate), -slope |d_a + k| across
// it. Issued before the GEMM, while no other accumulator is in flight.
__device__ __forceinline__ void alibi_scores(float (&acc)[BM / 2], float slope, int side, int d_a) {
  const float da = (float)d_a, db = (float)(d_a - 8);
  if (side != 0) {
    const float signed_slope = side > 0 ? -slope : slope;
    const float ra = signed_slope * da, rb = signed_slope * db;
#pragma unroll
    for (int c = 0; c < BM / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float k = (float)(c * 8 + e);
        acc[c * 4 + e] = fmaf(signed_slope, k, ra);
        acc[c * 4 + 2 + e] = fmaf(signed_slope, k, rb);
      }
    }
    return;
  }
#pragma unroll
  for (int c = 0; c < BM / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float k = (float)(c * 8 + e);
      acc[c * 4 + e] = -slope * fabsf(da + k);
      acc[c * 4 + 2 + e] = -slope * fabsf(db + k);
    }
  }
}
#endif

#if FA_ALIBI_MMA
// S^T = K Q^T over the head dim, then the bias's k-step (A from registers, B the panel), in one
// commit group.
__device__ __forceinline__ void gemm_over_head_dim_biased(float (&acc)[BM / 2], u32 a_rows, u32 b_rows,
                                                          const u32 (&bias_a)[4], u32 panel) {
  const u64 ka = opaque_u64(desc_sw128(a_rows, 16, 1024));
  const u64 qb = opaque_u64(desc_sw128(b_rows, 16, 1024));
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const u32 panel_k = kk / 4, within = (kk % 4) * 32;
    Wgmma<BM>::ss(acc, ka + ((panel_k * BN * 128 + within) >> 4), qb + ((panel_k * BM * 128 + within) >> 4), kk > 0);
  }
  Wgmma<BM>::rs(acc, bias_a, opaque_u64(alibi_panel_desc(panel)), 1);
  wg_commit();
}

// After S^T's wait: the warps whose 16 key rows the diagonal crosses (their k-step's A was 0)
// add the bias's |.| form, -slope |d_a + k| (d_a = m0 + 2 tq + offset - key_a).
__device__ __forceinline__ void alibi_cross_scores(float (&acc)[BM / 2], const float* stats, int m0, int key_a,
                                                   int offset, int tq) {
  if (alibi_side<MASK>(m0, BM, key_a & ~15, 16, offset) != 0) return;
  const float slope = stats[2 * BM];
  const float da = (float)(m0 + tq * 2 + offset - key_a), db = da - 8.f;
#pragma unroll
  for (int c = 0; c < BM / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float k = (float)(c * 8 + e);
      acc[c * 4 + e] = fmaf(-slope, fabsf(da + k), acc[c * 4 + e]);
      acc[c * 4 + 2 + e] = fmaf(-slope, fabsf(db + k), acc[c * 4 + 2 + e]);
    }
  }
}
#endif

// S^T (64 keys x 64 queries) = K Q^T into `acc`, plus the ALiBi bias under FA_ALIBI. `stats`:
// the step's row statistics (waited for under FA_ALIBI: they hold the slope); key_a: the
// thread's first key row (its warp's 16 keys start at key_a & ~15: key blocks and warps are
// aligned to 16). FA_ALIBI_MMA: `alibi_panel` holds the k-step's B; the caller runs
// alibi_cross_scores after the wait.
__device__ __forceinline__ void step_scores(float (&acc)[BM / 2], u32 k_rows, u32 q_rows, const float* stats, int m0,
                                            int key_a, int offset, int tq, u32 alibi_panel) {
#if FA_ALIBI_MMA
  const int side = alibi_side<MASK>(m0, BM, key_a & ~15, 16, offset);
  const float s = side > 0 ? -stats[2 * BM] : stats[2 * BM];
  u32 bias_a[4] = {0u, 0u, 0u, 0u};
  if (side != 0) alibi_bwd_fragment(bias_a, s, s * (float)(m0 + offset - key_a), s * (float)(m0 + offset - key_a - 8), tq);
  gemm_over_head_dim_biased(acc, k_rows, q_rows, bias_a, alibi_panel);
#elif FA_ALIBI
  const int side = alibi_side<MASK>(m0, BM, key_a & ~15, 16, offset);
  alibi_scores(acc, stats[2 * BM], side, m0 + tq * 2 + offset - key_a);
  gemm_over_head_dim<true>(acc, k_rows, q_rows);
#else
  gemm_over_head_dim(acc, k_rows, q_rows);
#endif
}

// Adds N columns of dQ (an m64nN accumulator; rows qa and qa + 8 of the step) at `row_a`, the
// accumulator address of row qa's first column; rows past seqlen_q are skipped.
template <int N>
__device__ __forceinline__ void add_dq(float* row_a, long long row_stride, const float (&dq)[N / 2], int qa,
                                       int seqlen_q) {
  float* row_b = row_a + 8 * row_stride;
#ifdef FA_ABLATE_DQ_REDUCTION  // timing experiments only: dQ is not added (wrong gradients)
  if (qa >= 0) return;
#endif
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
    if (qa < seqlen_q) red_add_v2(row_a + c * 8, dq[c * 4 + 0], dq[c * 4 + 1]);
    if (qa + 8 < seqlen_q) red_add_v2(row_b + c * 8, dq[c * 4 + 2], dq[c * 4 + 3]);
  }
}

#if FA_DQ_BULK
#include "common/dq_pieces.cuh"
// The accumulator's piece of warpgroup cw for query block `block` of (batch, head), in floats
// from its start: [batch, heads_q, query block, cw, 64 x d/2] (the convert's layout with two
// "warps" of 64 rows side by side, FlashAttention2Key.hopperPiecesConvert).
__device__ __forceinline__ i64 dq_piece_start(int batch, int head, int heads_q, int seqlen_q, int block, int cw) {
  return dq_piece_number(batch, head, heads_q, seqlen_q, BM, block, 2, cw) * DQ_PIECE_FLOATS;
}

// Stores this thread's part of an m64nN dQ accumulator (rows r and r + 8 of the piece, column
// pairs 8c + 2tq) into the piece at `piece`, chunk-permuted (DQ_SWIZZLE); r + 8 has r's
// permutation since DQ_SWIZZLE divides 8.
template <int N>
__device__ __forceinline__ void stage_dq(u32 piece, const float (&dq)[N / 2], int r, int tq) {
#if FA_DQ_STAGE_ROW
  // One address register per call: chunk c ^ sw of row r is at (start + 32 sw) ^ 32 c (the piece
  // is 1024-byte aligned, the chunk index in bits 5 and up); opaque, so that ptxas does not hoist
  // eight addresses out of the step loop (what spilled the d = 128 window and ALiBi variants;
  // every d = 128 variant but unmasked dropout takes this, HopperBackwardKey.stagesByRow).
  const u32 row = opaque_u32(piece + (u32)(r * N * 4) + (u32)(tq * 8) + (u32)((r & (DQ_SWIZZLE - 1)) * 32));
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
    const u32 address = row ^ (u32)(c * 32);
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(address), "f"(dq[c * 4 + 0]), "f"(dq[c * 4 + 1]) : "memory");
    asm volatile("st.shared.v2.f32 [%0+%3], {%1, %2};" ::"r"(address), "f"(dq[c * 4 + 2]), "f"(dq[c * 4 + 3]),
                 "n"(8 * N * 4) : "memory");
  }
#else
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
    const u32 column = (u32)(((c ^ (r & (DQ_SWIZZLE - 1))) * 8 + tq * 2) * 4);
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(piece + (u32)(r * N * 4) + column), "f"(dq[c * 4 + 0]),
                 "f"(dq[c * 4 + 1]) : "memory");
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(piece + (u32)((r + 8) * N * 4) + column), "f"(dq[c * 4 + 2]),
                 "f"(dq[c * 4 + 3]) : "memory");
  }
#endif
}
#endif

// Writes N columns of dK (times `scale`) and dV (times `dv_scale`: dropout's 1 / (1 - p), else 1)
// for the key rows key_a and key_b (those before seqlen_k); dk_out and dv_out point at column
// 2 tq of key row 0.
template <int N>
__device__ __forceinline__ void store_dk_dv(const float (&dk)[N / 2], const float (&dv)[N / 2], u16* dk_out,
                                            u16* dv_out, long long dk_stride_s, long long dv_stride_s, int key_a,
                                            int seqlen_k, float scale, float dv_scale = 1.f) {
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int key = key_a + half * 8, i = c * 4 + half * 2;
      if (key < seqlen_k) {
        *reinterpret_cast<u32*>(dk_out + key * dk_stride_s + c * 8) = pack2(dk[i] * scale, dk[i + 1] * scale);
        *reinterpret_cast<u32*>(dv_out + key * dv_stride_s + c * 8) = pack2(dv[i] * dv_scale, dv[i + 1] * dv_scale);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The producer warpgroup: thread 0 loads K and V once, then Q and dO of every step into the
// ring; warp 1 stages each step's LSE2 and D rows in shared memory, so that the consumers read
// them there instead of waiting on global loads in the middle of the step (run 20: causal within
// 10 % of non-causal, was 25-35 % slower).
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ void produce_tiles(
  const FAHopperBackwardParams& params, const BackwardSmem& sm, int n0, int kv_head, int batch, BlockRange range,
  int steps, const BackwardSequence& seq) {
  prefetch_map(&params.tm_q);
  prefetch_map(&params.tm_dout);
  mbar_expect_tx(sm.kv_full(), 2 * SK_BYTES);
#pragma unroll
  for (int p = 0; p < PANELS; ++p) {
    tma_load_4d(sm.k + p * BN * 128, &params.tm_k, sm.kv_full(), p * 64, seq.k_start + n0, kv_head, tma_batch(batch));
    tma_load_4d(sm.v + p * BN * 128, &params.tm_v, sm.kv_full(), p * 64, seq.k_start + n0, kv_head, tma_batch(batch));
  }
  StepWalk walk{kv_head * params.group, range.lo};
  for (int step = 0; step < steps; ++step, walk.next(range)) {
    const int s = step % QST;
    if (step >= QST) mbar_wait(sm.empty(s), ((step / QST) - 1) & 1);
    mbar_expect_tx(sm.q_full(s), SQ_BYTES);
#pragma unroll
    for (int p = 0; p < PANELS; ++p)
      tma_load_4d(sm.q(s) + p * BM * 128, &params.tm_q, sm.q_full(s), p * 64, seq.q_start + walk.m * BM, walk.head, tma_batch(batch));
    mbar_expect_tx(sm.do_full(s), SQ_BYTES);
#pragma unroll
    for (int p = 0; p < PANELS; ++p)
      tma_load_4d(sm.dout(s) + p * BM * 128, &params.tm_dout, sm.do_full(s), p * 64, seq.q_start + walk.m * BM, walk.head, tma_batch(batch));
  }
}

__device__ __forceinline__ void produce_stats(
  const FAHopperBackwardParams& params, const BackwardSmem& sm, unsigned char* smem_raw, int kv_head, int batch,
  BlockRange range, int steps, const BackwardSequence& seq) {
  const float* __restrict__ lse2 = params.lse2;
  const float* __restrict__ delta = params.delta;
  const int seqlen_q = seq.seqlen_q;
  const int lane = threadIdx.x % 32;
#if FA_ALIBI
  // The batch entry's first slope: an int beside the pointer in the parameter bank (this warp
  // has 24 registers; a pointer held across the loop spilled).
  const int slope0 = batch * (int)params.alibi_batch_stride;
#endif
  StepWalk walk{kv_head * params.group, range.lo};
  for (int step = 0; step < steps; ++step, walk.next(range)) {
    const int s = step % QST;
    if (step >= QST) mbar_wait(sm.empty(s), ((step / QST) - 1) & 1);
    const long long row0 = stats_row(packed_rows(params), batch, params.heads_q, walk.head, params.seqlen_q, seq.q_start, 0);
    float* rows = sm.stats_rows(smem_raw, s);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int qi = walk.m * BM + lane * 2 + e;
      rows[lane * 2 + e] = qi < seqlen_q ? lse2[row0 + qi] : FA_INF;
      rows[BM + lane * 2 + e] = qi < seqlen_q ? delta[row0 + qi] : 0.f;
    }
#if FA_ALIBI
    if (lane == 0) rows[2 * BM] = params.alibi_slopes[slope0 + walk.head] * (FA_LOG2E / params.scale_log2);
#endif
    mbar_arrive(sm.stats_full(s));
  }
}

// ---------------------------------------------------------------------------------------------
// The consumer warpgroups: per step (one query block of one head) S^T, dP^T, P^T, dS^T, dV, dK
// and, in the fused form, dQ; then dK and dV of their key rows. Two layouts by head dim.
// ---------------------------------------------------------------------------------------------

#if FA_HEAD_DIM == 256
__device__ __forceinline__ void consume(
  const FAHopperBackwardParams& params, const BackwardSmem& sm, unsigned char* smem_raw, const Mask<MASK>& mask,
  int n0, int kv_head, int batch, BlockRange range, int steps, const BackwardSequence& seq) {
  float* __restrict__ dq_accum = params.dq_accum;
  // The sequence's lengths bound the rows; the dQ accumulator keeps params.seqlen_q rows.
  const int seqlen_q = seq.seqlen_q, seqlen_k = seq.seqlen_k, heads_q = params.heads_q;
  const float scale_log2 = params.scale_log2;
  const int tid = threadIdx.x;
  const int warp = (tid / 32) % 4;  // warp in the warpgroup
  const int lane = tid % 32;
  const int tq = lane % 4;
  const int cw = tid / 128 - 1;     // consumer warpgroup
  StepWalk walk{kv_head * params.group, range.lo};
  if (steps > 0) {
    mbar_wait(sm.kv_full(), 0);
    clear_key_tail(sm, n0, seqlen_k);
  }
  // Both warpgroups hold the same 64 keys (warp w: keys 16 w .. 16 w + 15) and own dK and dV
  // columns 128 cw .. 128 cw + 127. Per step warpgroup 0 computes S^T and P^T, stores P (as
  // [query][key], stmatrix) and signals barrier 1; warpgroup 1 computes dP^T, reads P^T back
  // (ldmatrix, the same addresses), forms dS^T, stores dS and signals barrier 2. Then each
  // warpgroup runs dV += P^T dO, dK += dS^T Q (its half of the columns; P^T and dS^T read
  // transposed from shared memory) and its half of dQ = dS K in passes of 128 / FA_WIDE_DQ_PASSES
  // columns (one pass: 64 more registers, one wait instead of two; measured the same, run 22).
  constexpr int HALF = D / 2;
  constexpr int PASS = HALF / FA_WIDE_DQ_PASSES;
  const int key_a = n0 + warp * 16 + lane / 4;  // this thread's two key rows: key_a, key_a + 8

  float dv[HALF / 2], dk[HALF / 2];
#pragma unroll
  for (int i = 0; i < HALF / 2; ++i) {
    dv[i] = 0.f;
    dk[i] = 0.f;
  }
  float acc[BM / 2];
#if !FA_BWD_SKIP_DQ
  float dq[PASS / 2];
#endif
  u32 frag[BM / 16][4];

  for (int step = 0; step < steps; ++step) {
    const int st = step % QST;
    const u32 phase = (step / QST) & 1;
    const int m0 = walk.m * BM;
    const float* stats = sm.stats_rows(smem_raw, st);
    clear_query_tail(sm, st, phase, m0, seqlen_q);
    const u32 pbuf = sm.p(step & 1), dsbuf = sm.ds(step & 1);

    // S^T = K Q^T (warpgroup 0) or dP^T = V dO^T (warpgroup 1).
#if FA_ALIBI
    mbar_wait(sm.stats_full(st), phase);  // the slope, for S^T's bias
    mbar_wait(cw == 0 ? sm.q_full(st) : sm.do_full(st), phase);
    if (cw == 0) {
      step_scores(acc, sm.k, sm.q(st), stats, m0, key_a, mask.offset, tq, sm.alibi_panel);
    } else {
      gemm_over_head_dim(acc, sm.v, sm.dout(st));
    }
#else
    mbar_wait(cw == 0 ? sm.q_full(st) : sm.do_full(st), phase);
    gemm_over_head_dim(acc, cw == 0 ? sm.k : sm.v, cw == 0 ? sm.q(st) : sm.dout(st));
#endif
    mbar_wait(sm.stats_full(st), phase);
    wg_wait<0>();
    fence_regs(acc);

    if (cw == 0) {
      const bool masked = mask.tile_needs_mask<BM, BN>(m0, n0);
#if FA_ALIBI_MMA
      alibi_cross_scores(acc, stats, m0, key_a, mask.offset, tq);
#endif
      exponentiate(acc, stats, column_bounds(mask, masked, key_a, key_a + 8, m0 + tq * 2),
                   scale_log2, tq);
      to_fragments(acc, frag);
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk)
        stmatrix_x4_trans(transposed_address(pbuf, kk, warp, lane), frag[kk][0], frag[kk][1], frag[kk][2], frag[kk][3]);
      fence_async_shared();
      named_arrive(1, CONSUMER_THREADS);
      mbar_wait(sm.do_full(st), phase);
    } else {
      named_sync(1, CONSUMER_THREADS);
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk) {
        ldmatrix_x4_trans(transposed_address(pbuf, kk, warp, lane), frag[kk][0], frag[kk][1], frag[kk][2], frag[kk][3]);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          // frag[kk][r] holds P^T where acc[kk * 8 + 2 r], acc[kk * 8 + 2 r + 1] hold dP^T.
          float p0, p1;
          unpack2(frag[kk][r], p0, p1);
          const int c = kk * 2 + r / 2, e0 = (r % 2) * 2;  // accumulator chunk and row half
          const float d0 = stats[BM + c * 8 + tq * 2], d1 = stats[BM + c * 8 + tq * 2 + 1];
          acc[c * 4 + e0] = p0 * (acc[c * 4 + e0] - d0);
          acc[c * 4 + e0 + 1] = p1 * (acc[c * 4 + e0 + 1] - d1);
        }
      }
      to_fragments(acc, frag);
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk)
        stmatrix_x4_trans(transposed_address(dsbuf, kk, warp, lane), frag[kk][0], frag[kk][1], frag[kk][2], frag[kk][3]);
      fence_async_shared();
      named_arrive(2, CONSUMER_THREADS);
      mbar_wait(sm.q_full(st), phase);
    }

    // dV[:, half] += P^T dO[:, half]: P^T read transposed (M-major) from P, dO transposed.
    {
      const u64 pa = opaque_u64(desc_sw128(pbuf, BM * 128, 1024));
      const u64 dob = opaque_u64(desc_sw128(sm.dout(st) + cw * 2 * BM * 128, BM * 128, 1024));
      fence_regs(dv);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk)
        Wgmma<HALF>::ss_ta_tb(dv, pa + ((kk * 16 * 128) >> 4), dob + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    }
    if (cw == 0) named_sync(2, CONSUMER_THREADS);
    // dK[:, half] += dS^T Q[:, half].
    {
      const u64 da = opaque_u64(desc_sw128(dsbuf, BM * 128, 1024));
      const u64 qb = opaque_u64(desc_sw128(sm.q(st) + cw * 2 * BM * 128, BM * 128, 1024));
      fence_regs(dk);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk)
        Wgmma<HALF>::ss_ta_tb(dk, da + ((kk * 16 * 128) >> 4), qb + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    }
#if FA_BWD_SKIP_DQ
    wg_wait<0>();  // dQ comes from flash_bwd_dq_hopper (hopper/backward_dq.cu)
#else
    // dQ[:, 128 cw + PASS h ..] = dS K[:, same]: dS K-major, K transposed.
    const int qa = m0 + warp * 16 + lane / 4;
    float* row_a = dq_accum + (accumulator_row(packed_rows(params), batch, params.seqlen_q, seq.q_start, qa) * heads_q + walk.head) * D + cw * HALF + tq * 2;
#pragma unroll
    for (int h = 0; h < FA_WIDE_DQ_PASSES; ++h) {
      const u64 da = opaque_u64(desc_sw128(dsbuf, 16, 1024));
      const u64 kb = opaque_u64(desc_sw128(sm.k + (2 * cw + h * PASS / 64) * BN * 128, BN * 128, 1024));
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk)
        Wgmma<PASS>::ss_tb(dq, da + (((kk % 4) * 32) >> 4), kb + ((kk * 16 * 128) >> 4), kk > 0);
      wg_commit();
      wg_wait<0>();
      fence_regs(dq);
      add_dq<PASS>(row_a + h * PASS, (long long)heads_q * D, dq, qa, seqlen_q);
    }
#endif
    fence_regs(dv);
    fence_regs(dk);
    mbar_arrive(sm.empty(st));
    walk.next(range);
  }
  const int col0 = cw * HALF + tq * 2;  // this thread's first column of dK and dV
  // ---------------- epilogue: dK (scaled) and dV, key rows key_a and key_a + 8 ----------------
  constexpr int COLUMNS = sizeof(dk) / sizeof(dk[0]) * 2;
  u16* __restrict__ dk_out = params.dk;
  u16* __restrict__ dv_out = params.dv;
  store_dk_dv<COLUMNS>(dk, dv,
                       dk_out + batch * params.dk_strides.batch + kv_head * params.dk_strides.head
                         + seq.k_start * params.dk_strides.row + col0,
                       dv_out + batch * params.dv_strides.batch + kv_head * params.dv_strides.head
                         + seq.k_start * params.dv_strides.row + col0,
                       params.dk_strides.row, params.dv_strides.row, key_a, seqlen_k, params.scale);
}
#else
__device__ __forceinline__ void consume(
  const FAHopperBackwardParams& params, const BackwardSmem& sm, unsigned char* smem_raw, const Mask<MASK>& mask,
  int n0, int kv_head, int batch, BlockRange range, int steps, const BackwardSequence& seq) {
  float* __restrict__ dq_accum = params.dq_accum;
  // The sequence's lengths bound the rows; the dQ accumulator keeps params.seqlen_q rows.
  const int seqlen_q = seq.seqlen_q, seqlen_k = seq.seqlen_k, heads_q = params.heads_q;
  const float scale_log2 = params.scale_log2;
  const int tid = threadIdx.x;
  const int warp = (tid / 32) % 4;  // warp in the warpgroup
  const int lane = tid % 32;
  const int tq = lane % 4;
  const int cw = tid / 128 - 1;     // consumer warpgroup
  StepWalk walk{kv_head * params.group, range.lo};
  if (steps > 0) {
    mbar_wait(sm.kv_full(), 0);
    clear_key_tail(sm, n0, seqlen_k);
  }
  // Each warpgroup owns 64 keys (warp w: keys 64 cw + 16 w ..) and their dK, dV (64 x d).
  constexpr int NQ = D / 2;  // dQ columns per warpgroup
  const int key_a = n0 + cw * 64 + warp * 16 + lane / 4;  // this thread's key rows key_a, key_a + 8

  float dv[D / 2], dk[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) {
    dv[i] = 0.f;
    dk[i] = 0.f;
  }
  float s[BM / 2], dp[BM / 2];
#if !FA_BWD_SKIP_DQ
  float dq[NQ / 2];
#endif
  u32 pa[BM / 16][4], da[BM / 16][4];  // P^T and dS^T as A fragments (both in flight at once)
  const u32 k_rows = sm.k + cw * 64 * 128;  // this warpgroup's 64 rows in each K panel
  const u32 v_rows = sm.v + cw * 64 * 128;
#if FA_DROPOUT
  // The generator's index of query head 0 of this batch entry; a step adds its head.
  Dropout dropout(params.dropout, batch, 0);
  const u32 batch_head0 = dropout.batch_head;
#endif
#if !FA_BWD_SKIP_DQ
  // dQ = dS K reads its d/2 columns of K transposed: panel cw (d = 128) or half a panel (d = 64).
  const u32 k_cols = sm.k + (cw * NQ / 64) * BN * 128 + (cw * NQ % 64) * 2;
#endif

  for (int step = 0; step < steps; ++step) {
    const int st = step % QST;
    const u32 phase = (step / QST) & 1;
    const int m0 = walk.m * BM;
    const float* stats = sm.stats_rows(smem_raw, st);
    clear_query_tail(sm, st, phase, m0, seqlen_q);

    // S^T = K_w Q^T and dP^T = V_w dO^T, this warpgroup's 64 rows of K and V.
#if FA_ALIBI
    mbar_wait(sm.stats_full(st), phase);  // the slope, for S^T's bias
#endif
    mbar_wait(sm.q_full(st), phase);
    step_scores(s, k_rows, sm.q(st), stats, m0, key_a, mask.offset, tq, sm.alibi_panel);
    mbar_wait(sm.do_full(st), phase);
    gemm_over_head_dim(dp, v_rows, sm.dout(st));
#if FA_DROPOUT
    // The step's keep bits (bit i: element i of s and dp), while the two GEMMs run.
    dropout.batch_head = batch_head0 + (u32)walk.head;
    const u32 keep = transposed_keep_bits(dropout, m0, key_a >> 4, lane);
#endif

    const bool masked = mask.tile_needs_mask<BM, BN>(m0, n0);
    mbar_wait(sm.stats_full(st), phase);
    wg_wait<1>();
    fence_regs(s);
#if FA_ALIBI_MMA
    alibi_cross_scores(s, stats, m0, key_a, mask.offset, tq);
#endif
    exponentiate(s, stats, column_bounds(mask, masked, key_a, key_a + 8, m0 + tq * 2),
                 scale_log2, tq);
    wg_wait<0>();
    fence_regs(dp);
#pragma unroll
    for (int c = 0; c < BM / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float dl = stats[BM + c * 8 + tq * 2 + e];
#if FA_DROPOUT
        // dS^T = P^T (dP^T Z - D), Z = 1 / (1 - p) where kept, 0 where dropped.
        const float za = (keep >> (c * 4 + e)) & 1u ? dropout.scale : 0.f;
        const float zb = (keep >> (c * 4 + 2 + e)) & 1u ? dropout.scale : 0.f;
        dp[c * 4 + e] = s[c * 4 + e] * fmaf(dp[c * 4 + e], za, -dl);
        dp[c * 4 + 2 + e] = s[c * 4 + 2 + e] * fmaf(dp[c * 4 + 2 + e], zb, -dl);
#else
        dp[c * 4 + e] = s[c * 4 + e] * (dp[c * 4 + e] - dl);
        dp[c * 4 + 2 + e] = s[c * 4 + 2 + e] * (dp[c * 4 + 2 + e] - dl);
#endif
      }
    }
#if FA_DROPOUT
    // dV takes the dropped P^T (its 1 / (1 - p) once, in the epilogue).
#pragma unroll
    for (int i = 0; i < BM / 2; ++i)
      if (!((keep >> i) & 1u)) s[i] = 0.f;
#endif

    // dV += P^T dO: P^T from registers; dO (queries x d) is the transposed (MN-major) B.
    to_fragments(s, pa);
    auto issue_dv = [&]() {
      const u64 dob = opaque_u64(desc_sw128(sm.dout(st), BM * 128, 1024));
      fence_regs(dv);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk) Wgmma<D>::rs(dv, pa[kk], dob + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    };
    if (!FA_DQ_FIRST) issue_dv();
    // dS^T to 16 bits: the A operand of dK += dS^T Q, and, stored transposed as dS [query][key]
    // (this warpgroup's keys are panel cw), dQ's A operand.
    to_fragments(dp, da);
#if !FA_BWD_SKIP_DQ
    {
      const u32 ds_panel = sm.ds(step & 1) + cw * BM * 128;
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk)
        stmatrix_x4_trans(transposed_address(ds_panel, kk, warp, lane), da[kk][0], da[kk][1], da[kk][2], da[kk][3]);
    }
#endif
    auto issue_dk = [&]() {
      const u64 qb = opaque_u64(desc_sw128(sm.q(st), BM * 128, 1024));
      fence_regs(dk);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk) Wgmma<D>::rs(dk, da[kk], qb + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    };
    if (!FA_DQ_FIRST) issue_dk();
#if FA_BWD_SKIP_DQ
    wg_wait<0>();  // dQ comes from flash_bwd_dq_hopper (hopper/backward_dq.cu)
    fence_regs(dv);
    fence_regs(dk);
    mbar_arrive(sm.empty(st));
#else
    fence_async_shared();
#if FA_DQ_BULK
    // The piece is rewritten below: the last step's reduction must have read it.
    if (tid % 128 == 0) bulk_wait_read();
#endif
    named_sync(1, CONSUMER_THREADS);

    // dQ (64 x d/2 of this warpgroup) = dS K: dS K-major, K transposed.
    {
      const u64 dsa = opaque_u64(desc_sw128(sm.ds(step & 1), 16, 1024));
      const u64 kb = opaque_u64(desc_sw128(k_cols, BN * 128, 1024));
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        const u32 panel = kk / 4, within = (kk % 4) * 32;
        Wgmma<NQ>::ss_tb(dq, dsa + ((panel * BM * 128 + within) >> 4), kb + ((kk * 16 * 128) >> 4), kk > 0);
      }
      wg_commit();
    }
#if FA_DQ_BULK
    // Stages this warpgroup's piece of dQ; once its four warps have (named barrier 2 + cw), its
    // first thread hands the piece to the TMA unit and the warpgroup goes on.
    auto hand_over_dq = [&]() {
      stage_dq<NQ>(sm.dq_piece(cw), dq, warp * 16 + lane / 4, tq);
      fence_async_shared();
      if (warp == 0) {
        named_sync(2 + cw, 128);
        if (lane == 0)
          bulk_reduce_add(dq_accum + dq_piece_start(batch, walk.head, heads_q, params.seqlen_q, walk.m, cw),
                          sm.dq_piece(cw), DQ_PIECE_FLOATS * 4);
      } else {
        named_arrive(2 + cw, 128);
      }
    };
#endif
#if FA_DQ_FIRST
    // dV and dK behind dQ: wait for dQ alone and hand its piece over while they run.
    issue_dv();
    issue_dk();
    wg_wait<2>();
    fence_regs(dq);
    hand_over_dq();
    wg_wait<0>();
    fence_regs(dv);
    fence_regs(dk);
    mbar_arrive(sm.empty(st));
#else
    wg_wait<0>();
    fence_regs(dv);
    fence_regs(dk);
    fence_regs(dq);
    mbar_arrive(sm.empty(st));
#if FA_DQ_BULK
    hand_over_dq();
#else
    const int qa = m0 + warp * 16 + lane / 4;
    add_dq<NQ>(dq_accum + (accumulator_row(packed_rows(params), batch, params.seqlen_q, seq.q_start, qa) * heads_q + walk.head) * D + cw * NQ + tq * 2,
               (long long)heads_q * D, dq, qa, seqlen_q);
#endif
#endif
#endif
    walk.next(range);
  }
#if FA_DQ_BULK
  if (tid % 128 == 0) bulk_wait_all();  // the pieces' shared memory stays until they are read
#endif
  const int col0 = tq * 2;  // this thread's first column of dK and dV
  // ---------------- epilogue: dK (scaled) and dV, key rows key_a and key_a + 8 ----------------
  constexpr int COLUMNS = sizeof(dk) / sizeof(dk[0]) * 2;
  u16* __restrict__ dk_out = params.dk;
  u16* __restrict__ dv_out = params.dv;
  store_dk_dv<COLUMNS>(dk, dv,
                       dk_out + batch * params.dk_strides.batch + kv_head * params.dk_strides.head
                         + seq.k_start * params.dk_strides.row + col0,
                       dv_out + batch * params.dv_strides.batch + kv_head * params.dv_strides.head
                         + seq.k_start * params.dv_strides.row + col0,
                       params.dk_strides.row, params.dv_strides.row, key_a, seqlen_k, params.scale,
                       FA_DROPOUT ? params.dropout.keep_scale : 1.f);
}
#endif

extern "C" __global__ void __launch_bounds__(384, 1) flash_bwd_hopper(
  const __grid_constant__ FAHopperBackwardParams params) {
  extern __shared__ unsigned char smem_raw[];
  const BackwardSmem sm(smem_raw);
  int key_block = blockIdx.x, kv_head = blockIdx.y, batch = blockIdx.z;
#if FA_VARLEN
  // The packed schedule (common/varlen_schedule.cu): this block's entry names its key block.
  if (params.schedule) {
    const VarlenWork item = varlen_work(params.schedule, blockIdx.x);
    if (item.sequence < 0) return;
    key_block = item.unit;
    kv_head = item.head;
    batch = item.sequence;
  }
#endif
  const int n0 = key_block * BN;
  const SequenceRows seq_q = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, params.seqlen_q);
  const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, batch, params.seqlen_k);
  const BackwardSequence seq{seq_q.start, seq_k.start, seq_q.used, seq_k.used};
#if FA_VARLEN
  if (n0 >= seq.seqlen_k) return;  // the grid covers the longest sequence; this one is shorter
#endif
  const Mask<MASK> mask(seq.seqlen_q, seq.seqlen_k, params.window_left, params.window_right);
  // The query blocks that see a key of this block, walked for every query head of the group.
  const BlockRange range = mask.query_blocks<BM, BN>(n0, seq.seqlen_q);
  const int steps = range.count() * params.group;
  if (threadIdx.x == 0) sm.init_barriers();
#if FA_ALIBI_MMA
  fill_alibi_bwd_panel<BM>(sm.alibi_panel, threadIdx.x, blockDim.x);
  fence_async_shared();  // the generic-proxy stores before the consumers' wgmma reads
#endif
  __syncthreads();
  if (threadIdx.x / 128 == 0) {
    setmaxnreg_dec<24>();
    if (threadIdx.x == 0) {
      produce_tiles(params, sm, n0, kv_head, batch, range, steps, seq);
    } else if (threadIdx.x / 32 == 1) {
      produce_stats(params, sm, smem_raw, kv_head, batch, range, steps, seq);
    }
    return;
  }
  setmaxnreg_inc<240>();
  consume(params, sm, smem_raw, mask, n0, kv_head, batch, range, steps, seq);
}

}  // namespace fa_hopper
