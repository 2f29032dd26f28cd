// FlashAttention forward for Hopper (sm_90a): TMA + mbarrier ring, wgmma, warp specialization.
//
// The host prepends the compile-time configuration (the kernel key) as #defines:
//   FA_HEAD_DIM, FA_HEAD_DIM_V   head dims of Q/K and of V (multiples of 16, at most 256)
//   FA_BLOCK_N                   keys per tile (a multiple of 16, at most 256)
//   FA_STAGES                    depth of the K/V shared-memory rings
//   FA_Q_STAGES                  Q tile buffers (2: the next tile's Q loads during this tile)
//   FA_BF16                      1: bf16 storage, 0: fp16 storage (with FA_FP8: of the output)
//   FA_FP8                       1: Q, K, V in e4m3 (hopper/fp8.cuh), 0: in the FA_BF16 type
//   FA_MASK                      MaskKind: 0 none, 1 causal, 2 window (common/mask.cuh)
//   FA_SOFTCAP                   s = c * tanh(s / c) before masking
//   FA_PINGPONG                  the two consumer warpgroups take turns issuing their GEMMs
//   FA_OVERLAP                   issue the next QK^T before the current softmax
//   FA_CONSUMERS                 consumer warpgroups of 64 query rows: 2, or 3 (no ping-pong)
//   FA_VARLEN                    packed sequences (cu_seqlens): see for_each_sequence_tile (the
//                                padded schedule, or the packed one when params.schedule is set)
//   FA_ALIBI                     the ALiBi bias (hopper/alibi.cuh): one FFMA per score, the
//                                per-row rest folded into the row's max and exponent offset
//   FA_ALIBI_MMA                 with FA_ALIBI: the bias's column part as one more k-step of
//                                Q K^T on the tensor cores instead of the FFMA per score
//   FA_DROPOUT                   dropout on P after the softmax (hopper/dropout.cuh; 16-bit only)
//   FA_EXP2_FMA_PERIOD           fp8 without softcap: one chunk of four exponentials in this many
//                                on the FMA pipe (exp2_on_fma); absent or 0: all on the MUFU
// Sizes, strides and the window are the parameters (FAHopperForwardParams): one compile serves
// every problem size.
//
// Block: 1 + FA_CONSUMERS warpgroups. Warpgroup 0 is the producer (one thread issues TMA loads
// of the Q tile and of the K/V rings); the others are consumers, each owning 64 query rows of the
// 128- or 192-row tile (three consumers: a third warp per scheduler hides the softmax's
// dependency latencies, which bound d = 64 with two). S = Q K^T and O += P V run on wgmma (P
// from registers); the softmax is online in the log2 domain (common/softmax.cuh). Shared tiles
// are stored as 64-column panels with the 128-byte swizzle, the layout TMA writes and wgmma
// descriptors read. Work tiles come from hopper/scheduler.cuh, the output from
// hopper/epilogue.cuh.
//
// fp8 (FA_FP8): the same kernel with 1-byte elements, so a 128-byte panel holds 128 columns and
// a wgmma k step 32 (m64nNk32 e4m3). 8-bit wgmma reads B K-major only, so V is transposed in
// shared memory: the producer warpgroup's warps 1-3 turn each landed V stage into V^T in a ring
// of its own (hopper/fp8.cuh) while warp 0 issues the TMA loads. P is stored as 2^8 · exp (the
// e4m3 range kept away from its subnormals, FlashAttention-3's offset) with the eager max
// update (the lazy one would let P reach 2^16, past e4m3's 448); the descales fold into the
// score scale (q, k) and the output's normalization (v).
#include "common/mask.cuh"
#include "common/softmax.cuh"
#include "hopper/epilogue.cuh"
#include "hopper/ptx.cuh"
#include "hopper/scheduler.cuh"
#include "hopper/varlen.cuh"
#include "hopper/wgmma.cuh"
#include "hopper/wgmma_e4m3.cuh"
#include "hopper/fp8.cuh"
#include "hopper/alibi.cuh"
#include "hopper/dropout.cuh"

#ifndef FA_FP8
#define FA_FP8 0
#endif

namespace fa_hopper {

constexpr int D = FA_HEAD_DIM;
constexpr int DV = FA_HEAD_DIM_V;
constexpr int NC = FA_CONSUMERS;  // consumer warpgroups of 64 rows
constexpr int BM = 64 * NC;
constexpr int BN = FA_BLOCK_N;
constexpr int ST = FA_STAGES;
constexpr int QST = FA_Q_STAGES;
constexpr MaskKind MASK = MaskKind(FA_MASK);
constexpr bool SOFTCAP = FA_SOFTCAP;
constexpr bool PINGPONG = FA_PINGPONG;
constexpr bool OVERLAP = FA_OVERLAP;
constexpr bool FP8 = FA_FP8;
constexpr bool ALIBI = FA_ALIBI;
constexpr bool ALIBI_MMA = FA_ALIBI_MMA;
constexpr bool DROPOUT = FA_DROPOUT;
constexpr int ELEM = FP8 ? 1 : 2;      // bytes per Q/K/V element
constexpr int PANEL = 128 / ELEM;      // columns per 128-byte swizzled panel
constexpr int KSTEP = 32 / ELEM;       // k per wgmma instruction (a 32-byte slice of a panel row)
// Head dims rounded up to whole panels; TMA fills the padding columns with zeros.
constexpr int DP = (D + PANEL - 1) / PANEL * PANEL;
constexpr int DVP = (DV + PANEL - 1) / PANEL * PANEL;
// The PV GEMM's N: DV rounded to a supported wgmma width (the padded columns are zeros).
constexpr int NV = DV <= 64 ? 64 : DV <= 128 ? 128 : 256;
constexpr int SQ_BYTES = BM * DP * ELEM;
constexpr int SK_BYTES = BN * DP * ELEM;
constexpr int SV_BYTES = BN * DVP * ELEM;
// fp8: the V^T ring (DVP rows of BN keys per stage), filled by the transposing warps.
constexpr int SVT_BYTES = FP8 ? DVP * BN : 0;
constexpr int TRANSPOSERS = 96;  // producer warps 1-3
// P is stored as 2^P_OFFSET · exp(s - max) (fp8: FlashAttention-3's offset of 8).
constexpr float P_OFFSET = FP8 ? 8.f : 0.f;
// Rows of large scores take the exact exponent (common/softmax.cuh). Not fp8 (its e4m3 P is far
// coarser than the FFMA's rounding) nor softcap (mul = 1 there: the FFMA's subtraction is exact).
constexpr bool EXACT_EXPONENT = !FP8 && !SOFTCAP;
// ALiBi: tiles whose biased max lies this far (log2 units) below the row's max skip the exact
// form although their offset is large (see softmax()).
constexpr float ALIBI_EXACT_RANGE = 16.f;
// fp8 without softcap: one chunk of four exponentials in every FA_EXP2_FMA_PERIOD on the FMA pipe
// (exp2_on_fma), beside the MUFU's; 0 (the default) keeps them all on the MUFU. A tuning knob
// until measured (HopperForwardKey.exp2OnFMAPeriod, --fp8-exp2-fma-period).
#ifndef FA_EXP2_FMA_PERIOD
#define FA_EXP2_FMA_PERIOD 0
#endif
constexpr int EXP2_FMA_PERIOD = FP8 && !SOFTCAP ? FA_EXP2_FMA_PERIOD : 0;
constexpr int CONSUMER_THREADS = 128 * NC;
// 512 threads with three consumers: 128 x 24 (producer) + 384 x 160 fits the SM's 64K registers.
// fp8: the producer warpgroup also transposes V, which spills at 24; 128 x 40 + 256 x 232 stays
// within the 384 x 168 the launch allocates.
constexpr int PRODUCER_REGISTERS = FP8 ? 40 : 24;
constexpr int CONSUMER_REGISTERS = FP8 ? 232 : NC == 3 ? 160 : 240;
// setmaxnreg.inc waits until the pool holds the registers it asks for, and the pool is what the
// launch allocated (its per-thread count, a multiple of 8, times the block): a rebalance that
// asks for more never returns (2026-12-06: 48 + 2 x 232 hung every dropout forward).
constexpr int LAUNCH_REGISTERS = 65536 / (128 * (NC + 1)) / 8 * 8;
static_assert(128 * PRODUCER_REGISTERS + CONSUMER_THREADS * CONSUMER_REGISTERS <= 128 * (NC + 1) * LAUNCH_REGISTERS,
              "setmaxnreg: the warpgroups' registers must fit what the launch allocated");
static_assert(NC == 2 || (NC == 3 && !PINGPONG), "three consumers: no ping-pong");
static_assert(D % 16 == 0 && DV % 16 == 0 && D <= 256 && DV <= 256, "head dims");
static_assert(BN % 16 == 0 && BN <= 256, "block N");
static_assert(NV >= DV && NV <= DVP, "PV width: head_dim_v must be 64, 96, 128 or 256 (or below 64)");
static_assert(!FP8 || (BN % 128 == 0 && D % 32 == 0), "fp8: block N a multiple of 128 (whole V^T panels), head_dim of 32");
static_assert(!(FP8 && ALIBI), "ALiBi: 16-bit inputs only");
static_assert(!ALIBI_MMA || ALIBI, "FA_ALIBI_MMA: with FA_ALIBI");
static_assert(!(FP8 && DROPOUT), "dropout: 16-bit inputs only");

// The wgmma of the storage type.
template <bool E4M3, int N> struct MmaOf { typedef Wgmma<N> type; };
template <int N> struct MmaOf<true, N> { typedef WgmmaE4M3<N> type; };
template <int N> using Mma = typename MmaOf<FP8, N>::type;

typedef Mask<MASK> ForwardMask;
typedef PairedScheduler<BM, BN> Scheduler;

// The work tiles with their sequence: body(tile, mask, q_start, k_start, seqlen_q). Fixed
// length: the scheduler's tiles, the kernel's mask, start rows 0. FA_VARLEN: the batch index
// picks a sequence of cu_seqlens (common/varlen.cuh), whose own lengths make the tile's mask and
// key range (a tile past the sequence's queries has none, and stores nothing). The TMA maps then
// describe the packed tensors as one batch entry of `total` rows, so a tile reads rows at the
// sequence's start + its offset: query rows past the sequence belong to the next one (computed,
// never stored) and key columns past it are masked (and their V rows zeroed, clear_v_tail).
// With the packed schedule (params.schedule, common/varlen_schedule.cu) work item w is entry w
// of the list instead: a pair of query blocks (n-1-u, u) of the sequence's own n blocks, or -1
// (the list's tail: nothing). Producer and consumers read the same entries.
template <class Body>
__device__ __forceinline__ void for_each_sequence_tile(
  const FAHopperForwardParams& params, const Scheduler& scheduler, const ForwardMask& mask, Body body) {
#if FA_VARLEN
  auto visit = [&](WorkTile tl) {
    const SequenceRows seq_q = sequence_rows(params.cu_seqlens_q, params.seqused_q, tl.batch, params.seqlen_q);
    const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, tl.batch, params.seqlen_k);
    const ForwardMask sequence_mask(seq_q.used, seq_k.used, params.window_left, params.window_right);
    const BlockRange keys = sequence_mask.template key_blocks<BM, BN>(tl.m0);
    tl.n_lo = keys.lo;
    tl.n_hi = tl.m0 < seq_q.used ? keys.hi : keys.lo;
    body(tl, sequence_mask, seq_q.start, seq_k.start, seq_q.used);
  };
  if (params.schedule) {
    for (int w = blockIdx.x; w < params.num_items; w += gridDim.x) {
      const VarlenWork item = varlen_work(params.schedule, w);
      if (item.sequence < 0) continue;
      const int high = item.blocks - 1 - item.unit;
      for (int sub = 0; sub < 2; ++sub) {
        if (sub == 1 && item.unit == high) continue;
        WorkTile tl;
        tl.m0 = (sub == 0 ? high : item.unit) * BM;
        tl.head = item.head;
        tl.batch = item.sequence;
        visit(tl);
      }
    }
    return;
  }
  for_each_tile(scheduler, mask, visit);
#else
  for_each_tile(scheduler, mask, [&](WorkTile tl) { body(tl, mask, 0, 0, params.seqlen_q); });
#endif
}

// ---------------------------------------------------------------------------------------------
// Shared memory: QST Q buffers, the K and V rings (separate, so K(j+1) loads as soon as QK^T(j)
// is done with K(j), run 4), and their mbarriers. K/V ring position r (counted across work
// tiles) uses stage r % ST with parity (r / ST) & 1.
// ---------------------------------------------------------------------------------------------

struct ForwardSmem {
  u32 q0, k0, v0, vt0, bar_q_full, bar_q_empty, bar_full_k, bar_full_v, bar_empty_k, bar_empty_v;
  u32 bar_full_vt, bar_empty_vt;
  u32 alibi_panel;  // FA_ALIBI_MMA: the bias k-step's B (hopper/alibi.cuh)

  __device__ __forceinline__ explicit ForwardSmem(const unsigned char* smem_raw) {
    q0 = (smem_u32(smem_raw) + 1023u) & ~1023u;  // the 128-byte swizzle repeats every 1024
    k0 = q0 + QST * SQ_BYTES;
    v0 = k0 + ST * SK_BYTES;
    vt0 = v0 + ST * SV_BYTES;
    bar_q_full = vt0 + ST * SVT_BYTES;
    bar_q_empty = bar_q_full + 8 * QST;
    bar_full_k = bar_q_empty + 8 * QST;
    bar_full_v = bar_full_k + 8 * ST;
    bar_empty_k = bar_full_v + 8 * ST;
    bar_empty_v = bar_empty_k + 8 * ST;
    bar_full_vt = bar_empty_v + 8 * ST;
    bar_empty_vt = bar_full_vt + 8 * ST;
    alibi_panel = (bar_empty_vt + 8 * ST + 127u) & ~127u;
  }

  __device__ __forceinline__ u32 q(int s) const { return q0 + s * SQ_BYTES; }
  __device__ __forceinline__ u32 q_full(int s) const { return bar_q_full + 8 * s; }
  __device__ __forceinline__ u32 q_empty(int s) const { return bar_q_empty + 8 * s; }
  __device__ __forceinline__ u32 k(int s) const { return k0 + s * SK_BYTES; }
  __device__ __forceinline__ u32 v(int s) const { return v0 + s * SV_BYTES; }
  __device__ __forceinline__ u32 full_k(int s) const { return bar_full_k + 8 * s; }
  __device__ __forceinline__ u32 full_v(int s) const { return bar_full_v + 8 * s; }
  __device__ __forceinline__ u32 empty_k(int s) const { return bar_empty_k + 8 * s; }
  __device__ __forceinline__ u32 empty_v(int s) const { return bar_empty_v + 8 * s; }
  __device__ __forceinline__ u32 vt(int s) const { return vt0 + s * SVT_BYTES; }
  __device__ __forceinline__ u32 full_vt(int s) const { return bar_full_vt + 8 * s; }
  __device__ __forceinline__ u32 empty_vt(int s) const { return bar_empty_vt + 8 * s; }
  // The PV GEMM's B operand and its barriers: V as loaded, or (fp8) its transpose.
  __device__ __forceinline__ u32 pv_b(int s) const { return FP8 ? vt(s) : v(s); }
  __device__ __forceinline__ u32 pv_full(int s) const { return FP8 ? full_vt(s) : full_v(s); }
  __device__ __forceinline__ u32 pv_empty(int s) const { return FP8 ? empty_vt(s) : empty_v(s); }

  // One thread, before every other touches them.
  __device__ __forceinline__ void init_barriers() const {
    for (int s = 0; s < QST; ++s) {
      mbar_init(q_full(s), 1);
      mbar_init(q_empty(s), CONSUMER_THREADS);
    }
    for (int s = 0; s < ST; ++s) {
      mbar_init(full_k(s), 1);
      mbar_init(full_v(s), 1);
      mbar_init(empty_k(s), CONSUMER_THREADS);
      // fp8: the raw V stage is released by the transposing warps, the V^T stage by the consumers.
      mbar_init(empty_v(s), FP8 ? TRANSPOSERS : CONSUMER_THREADS);
      if (FP8) {
        mbar_init(full_vt(s), TRANSPOSERS);
        mbar_init(empty_vt(s), CONSUMER_THREADS);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }

  // Waits until ring position r of K (of the PV operand: V, or V^T for fp8) is ready.
  __device__ __forceinline__ void wait_k(int r) const { mbar_wait(full_k(r % ST), (r / ST) & 1); }
  __device__ __forceinline__ void wait_v(int r) const { mbar_wait(pv_full(r % ST), (r / ST) & 1); }
};

// ---------------------------------------------------------------------------------------------
// The producer: one thread issues every TMA load of the block.
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ void produce(
  const FAHopperForwardParams& params, const ForwardSmem& sm, const Scheduler& scheduler, const ForwardMask& mask) {
  prefetch_map(&params.tm_q);
  prefetch_map(&params.tm_k);
  prefetch_map(&params.tm_v);
  int ring = 0;     // K/V tiles loaded so far (ring position across work tiles)
  int q_loads = 0;  // Q tiles loaded so far
  for_each_sequence_tile(params, scheduler, mask, [&](const WorkTile& tl, const ForwardMask&, int q_start, int k_start, int) {
    const int n_iters = tl.iters();
    if (n_iters == 0) return;
    const int kv_head = tl.head / params.group;
    // The consumers release a Q buffer once the last QK^T of the tile that used it has
    // completed. With two buffers this wait has long passed: the producer gets here once it has
    // issued the previous tile's last V load, a few key tiles before that tile ends.
    const int qs = q_loads % QST;
    if (q_loads >= QST) mbar_wait(sm.q_empty(qs), ((q_loads / QST) - 1) & 1);
    mbar_expect_tx(sm.q_full(qs), SQ_BYTES);
#pragma unroll
    for (int p = 0; p < DP / PANEL; ++p)
      tma_load_4d(sm.q(qs) + p * BM * 128, &params.tm_q, sm.q_full(qs), p * PANEL, q_start + tl.m0, tl.head, tma_batch(tl.batch));
    ++q_loads;
    // Key tiles from the last to the first (the diagonal tile first under a causal mask); K runs
    // one tile ahead of V, since the consumers need K(j+1) (for QK^T) before V(j) (for PV).
    auto load_k = [&](int it) {
      const int r = ring + it, s = r % ST;
      if (r >= ST) mbar_wait(sm.empty_k(s), ((r / ST) - 1) & 1);
      mbar_expect_tx(sm.full_k(s), SK_BYTES);
#pragma unroll
      for (int p = 0; p < DP / PANEL; ++p)
        tma_load_4d(sm.k(s) + p * BN * 128, &params.tm_k, sm.full_k(s), p * PANEL, k_start + (tl.n_hi - 1 - it) * BN, kv_head, tma_batch(tl.batch));
    };
    auto load_v = [&](int it) {
      const int r = ring + it, s = r % ST;
      if (r >= ST) mbar_wait(sm.empty_v(s), ((r / ST) - 1) & 1);
      mbar_expect_tx(sm.full_v(s), SV_BYTES);
#pragma unroll
      for (int p = 0; p < DVP / PANEL; ++p)
        tma_load_4d(sm.v(s) + p * BN * 128, &params.tm_v, sm.full_v(s), p * PANEL, k_start + (tl.n_hi - 1 - it) * BN, kv_head, tma_batch(tl.batch));
    };
    load_k(0);
    for (int it = 0; it < n_iters; ++it) {
      if (it + 1 < n_iters) load_k(it + 1);
      load_v(it);
    }
    ring += n_iters;
  });
}

// fp8: the producer's warps 1-3 transpose each V stage once it has landed (hopper/fp8.cuh), in
// the producer's ring order, into the V^T ring the consumers read.
__device__ __forceinline__ void transpose_ring(const ForwardSmem& sm, const Scheduler& scheduler, const ForwardMask& mask) {
  const int worker = threadIdx.x - 32;
  const TransposeLane lane(worker % 32);
  int ring = 0;
  for_each_tile(scheduler, mask, [&](const WorkTile& tl) {
    const int n_iters = tl.iters();
#pragma unroll 1
    for (int it = 0; it < n_iters; ++it) {
      const int r = ring + it, s = r % ST;
      mbar_wait(sm.full_v(s), (r / ST) & 1);
      if (r >= ST) mbar_wait(sm.empty_vt(s), ((r / ST) - 1) & 1);
      transpose_v_stage<BN, DVP, TRANSPOSERS / 32>(sm.v(s), sm.vt(s), worker / 32, lane);
      fence_async_shared();  // the generic-proxy writes before the consumers' wgmma reads
      mbar_arrive(sm.full_vt(s));
      mbar_arrive(sm.empty_v(s));
    }
    ring += n_iters;
  });
}

// ---------------------------------------------------------------------------------------------
// A consumer thread: its part of S, P and O in the wgmma accumulator layout (two rows, row_a and
// row_b = row_a + 8, two adjacent columns per 8), the rows' softmax state, and the GEMMs.
// ---------------------------------------------------------------------------------------------

struct Consumer {
  int cw;  // consumer warpgroup 0 .. NC-1
  int tq;  // column pair within an 8-column chunk
  u32 q_base;  // this warpgroup's 64 rows of the current Q buffer
  float s[BN / 2];
  u32 p[BN / KSTEP][4];
  float o[NV / 2];
  float m_a, m_b;  // running max, already times scale*log2(e)
  float r_a, r_b;  // the raw score whose product m_a / m_b is (16-bit, no softcap: the exact exponent)
  float l_a, l_b;  // this thread's partial row sums
  int row_a, row_b;
  // fp8: the score scales of the current work tile, params' times q_descale * k_descale (16-bit
  // kernels read params' directly).
  float scale_log2, softcap_over;
#if FA_ALIBI
  // The work tile's slope in raw-score units (per unit of distance): slope · log2(e) / mul.
  float alibi_slope;
#endif
#if FA_DROPOUT
  u32 dropout_batch_head;  // the work tile's generator index (hopper/dropout.cuh)
#endif

  // Descriptors are rebuilt from an opaque base at each use: hoisted out of the loop, the
  // per-k-step descriptors would hold 2 registers each for the whole tile (and spill at d=256).
  // `n0`: the tile's first key (FA_ALIBI_MMA: which side of the diagonal this warp's rows lie).
  __device__ __forceinline__ void qk_gemm(const ForwardSmem& sm, int st, const ForwardMask& mask, int n0) {
    const u64 qa = opaque_u64(desc_sw128(q_base, 16, 1024));
    const u64 kb = opaque_u64(desc_sw128(sm.k(st), 16, 1024));
#if FA_ALIBI_MMA
    u32 bias_a[4];
    alibi_mma_fragment(bias_a, alibi_slope, alibi_mma_side(alibi_side<MASK>(row_a & ~15, 16, n0, BN, mask.offset), alibi_slope), tq);
#endif
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / KSTEP; ++kk) {
      const u32 panel = kk / 4, within = (kk % 4) * 32;
      const u64 da = qa + ((panel * BM * 128 + within) >> 4);
      const u64 db = kb + ((panel * BN * 128 + within) >> 4);
      Mma<BN>::ss(s, da, db, kk > 0);
    }
#if FA_ALIBI_MMA
    Wgmma<BN>::rs(s, bias_a, opaque_u64(alibi_panel_desc(sm.alibi_panel)), 1);
#endif
    wg_commit();
  }

  __device__ __forceinline__ void pv_gemm(const ForwardSmem& sm, int st) {
    if constexpr (FP8) {
      // V^T, K-major: panels of 128 keys x DVP rows, 4 k steps of 32 keys each.
      const u64 vb = opaque_u64(desc_sw128(sm.pv_b(st), 16, 1024));
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / KSTEP; ++kk) {
        const u32 panel = kk / 4, within = (kk % 4) * 32;
        Mma<NV>::rs(o, p[kk], vb + ((panel * DVP * 128 + within) >> 4), 1);
      }
      wg_commit();
    } else {
      const u64 vb = opaque_u64(desc_sw128(sm.v(st), BN * 128, 1024));
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) Wgmma<NV>::rs(o, p[kk], vb + ((kk * 16 * 128) >> 4), 1);
      wg_commit();
    }
  }

  // Masks and exponentiates S in place (scale folded in), updates the running max and sums,
  // and returns the factors that rescale O. `n0` is the tile's first key; `masked` says
  // whether any key of the tile may be hidden.
  __device__ __forceinline__ float2 softmax(
    const FAHopperForwardParams& params, const ForwardMask& mask, int n0, bool masked) {
    float mul;
    if constexpr (SOFTCAP) {
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) s[i] = tanh_approx(s[i] * (FP8 ? softcap_over : params.softcap_over)) * params.softcap_log2;
      mul = 1.f;
    } else {
      // Raw scores: the max commutes with the positive scale, which is folded into one FFMA below.
      mul = FP8 ? scale_log2 : params.scale_log2;
    }
    if (masked) {
      const int first = n0 + tq * 2;
      const ColumnRange a = mask.key_columns(row_a, first), b = mask.key_columns(row_b, first);
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (a.hides(c * 8 + e)) s[c * 4 + e] = -FA_INF;
          if (b.hides(c * 8 + e)) s[c * 4 + 2 + e] = -FA_INF;
        }
      }
    }
#if FA_ALIBI
    // This warp's 16 rows (the thread's rows a and a + 8 among them) against the tile's keys.
    const int side = alibi_side<MASK>(row_a & ~15, 16, n0, BN, mask.offset);
#if FA_ALIBI_MMA
    // The tensor cores added the column part where qk_gemm's side (the same function) is not 0.
    const int mma_side = alibi_mma_side(side, alibi_slope);
    const float2 rest = mma_side != 0 ? alibi_mma_rest(alibi_slope, mma_side, row_a + mask.offset - n0)
                                      : add_alibi_rows<BN>(s, alibi_slope, 0, row_a + mask.offset - (n0 + tq * 2));
#else
    const float2 rest = add_alibi_rows<BN>(s, alibi_slope, side, row_a + mask.offset - (n0 + tq * 2));
#endif
#endif
    float mx_a = -FA_INF, mx_b = -FA_INF;
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      mx_a = fmaxf(mx_a, fmaxf(s[c * 4 + 0], s[c * 4 + 1]));
      mx_b = fmaxf(mx_b, fmaxf(s[c * 4 + 2], s[c * 4 + 3]));
    }
#if FA_ALIBI
    mx_a += rest.x;  // the thread's max of the biased scores (-inf stays -inf)
    mx_b += rest.y;
#endif
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 1));
    mx_a = fmaxf(mx_a, shfl_xor(mx_a, 2));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 1));
    mx_b = fmaxf(mx_b, shfl_xor(mx_b, 2));
    const float tile_a = mx_a, tile_b = mx_b;  // raw (with ALiBi: biased) tile maxima
    // The lazy update (see RESCALE_SLACK); fp8 updates eagerly, so P stays within 2^P_OFFSET.
    mx_a = next_max<!FP8>(m_a, mx_a * mul);
    mx_b = next_max<!FP8>(m_b, mx_b * mul);
    if constexpr (EXACT_EXPONENT) {
      // m only moves to a tile's max: the raw max is that tile's (x -> fp32(x·mul) is monotone).
      if (mx_a != m_a) r_a = tile_a;
      if (mx_b != m_b) r_b = tile_b;
    }
#if FA_ALIBI
    const float use_a = exponent_offset(mx_a) - P_OFFSET - rest.x * mul;
    const float use_b = exponent_offset(mx_b) - P_OFFSET - rest.y * mul;
#else
    const float use_a = exponent_offset(mx_a) - P_OFFSET;
    const float use_b = exponent_offset(mx_b) - P_OFFSET;
#endif
    const float fa = rescale_factor(m_a, mx_a);
    const float fb = rescale_factor(m_b, mx_b);
    m_a = mx_a;
    m_b = mx_b;
    float sum_a = 0.f, sum_b = 0.f;
#if FA_ALIBI
    // With ALiBi the offset is large on every tile far from the diagonal (the bias's per-row rest,
    // slope * distance), not only for large scores. The exact form matters only where p comes near
    // 1; a tile whose biased max lies ALIBI_EXACT_RANGE below the row's max has every p below
    // 2^-ALIBI_EXACT_RANGE, and the FFMA form's error there (ulp(use) relative, as the bias's own
    // fp32 rounding gives a standard attention) is far under l's rounding.
    // r_a is the raw max whose product the row's max is (-inf before any visible key: near).
    const bool exact_a = needs_exact_exponent(use_a) && (tile_a - r_a) * mul >= -ALIBI_EXACT_RANGE;
    const bool exact_b = needs_exact_exponent(use_b) && (tile_b - r_b) * mul >= -ALIBI_EXACT_RANGE;
#else
    const bool exact_a = needs_exact_exponent(use_a), exact_b = needs_exact_exponent(use_b);
#endif
    if (EXACT_EXPONENT && __builtin_expect(exact_a || exact_b, 0)) {
      // 2^((s - r)·mul) for rows of large scores; with ALiBi s + rest is the biased score,
      // rounded as the max above was.
#if FA_ALIBI
      const float add_a = rest.x, add_b = rest.y;
#else
      const float add_a = 0.f, add_b = 0.f;
#endif
      const float ra = raw_exponent_offset(r_a), rb = raw_exponent_offset(r_b);
#pragma unroll
      for (int c = 0; c < BN / 8; ++c) {
        s[c * 4 + 0] = ex2(((s[c * 4 + 0] + add_a) - ra) * mul);
        s[c * 4 + 1] = ex2(((s[c * 4 + 1] + add_a) - ra) * mul);
        s[c * 4 + 2] = ex2(((s[c * 4 + 2] + add_b) - rb) * mul);
        s[c * 4 + 3] = ex2(((s[c * 4 + 3] + add_b) - rb) * mul);
        sum_a += s[c * 4 + 0] + s[c * 4 + 1];
        sum_b += s[c * 4 + 2] + s[c * 4 + 3];
      }
      l_a = l_a * fa + sum_a;
      l_b = l_b * fb + sum_b;
      return make_float2(fa, fb);
    }
#pragma unroll
    for (int c = 0; c < BN / 8; ++c) {
      if (EXP2_FMA_PERIOD > 0 && c % EXP2_FMA_PERIOD == EXP2_FMA_PERIOD - 1) {
        // One chunk in EXP2_FMA_PERIOD on the FMA pipe (hopper/fp8.cuh): fewer MUFU cycles a tile.
        s[c * 4 + 0] = exp2_on_fma(fmaf(s[c * 4 + 0], mul, -use_a));
        s[c * 4 + 1] = exp2_on_fma(fmaf(s[c * 4 + 1], mul, -use_a));
        s[c * 4 + 2] = exp2_on_fma(fmaf(s[c * 4 + 2], mul, -use_b));
        s[c * 4 + 3] = exp2_on_fma(fmaf(s[c * 4 + 3], mul, -use_b));
      } else {
        s[c * 4 + 0] = ex2(fmaf(s[c * 4 + 0], mul, -use_a));
        s[c * 4 + 1] = ex2(fmaf(s[c * 4 + 1], mul, -use_a));
        s[c * 4 + 2] = ex2(fmaf(s[c * 4 + 2], mul, -use_b));
        s[c * 4 + 3] = ex2(fmaf(s[c * 4 + 3], mul, -use_b));
      }
      sum_a += s[c * 4 + 0] + s[c * 4 + 1];
      sum_b += s[c * 4 + 2] + s[c * 4 + 3];
    }
    l_a = l_a * fa + sum_a;
    l_b = l_b * fb + sum_b;
    return make_float2(fa, fb);
  }

  // P (in S's registers) to wgmma A fragments. Only after the previous P V has finished reading
  // `p`. fp8: per 32-key step, registers of 4 keys in the renamed order of hopper/fp8.cuh
  // (chunks 4kk, 4kk+1 of row a, of row b, then chunks 4kk+2, 4kk+3).
  __device__ __forceinline__ void convert_p() {
    if constexpr (FP8) {
#pragma unroll
      for (int kk = 0; kk < BN / KSTEP; ++kk) {
        const float* c = s + kk * 16;  // four 8-column chunks, 4 values each
        p[kk][0] = pack_e4m3x4(c[0], c[1], c[4], c[5]);
        p[kk][1] = pack_e4m3x4(c[2], c[3], c[6], c[7]);
        p[kk][2] = pack_e4m3x4(c[8], c[9], c[12], c[13]);
        p[kk][3] = pack_e4m3x4(c[10], c[11], c[14], c[15]);
      }
      return;
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      p[kk][0] = pack2(s[kk * 8 + 0], s[kk * 8 + 1]);
      p[kk][1] = pack2(s[kk * 8 + 2], s[kk * 8 + 3]);
      p[kk][2] = pack2(s[kk * 8 + 4], s[kk * 8 + 5]);
      p[kk][3] = pack2(s[kk * 8 + 6], s[kk * 8 + 7]);
    }
  }

  // FA_DROPOUT: zeroes the dropped P of tile n0, after the softmax (which summed it undropped),
  // right before convert_p: once the previous P V has finished with `p`, whose registers the
  // Philox calls then use (called between the softmax and that P V's wait instead, the d = 128
  // BN = 176 and the three-consumer d = 64 variants spilled 16-80 bytes). The epilogue scales
  // O by 1 / (1 - p). Nothing in other kernels.
  __device__ __forceinline__ void drop(const FAHopperForwardParams& params, int n0) {
#if FA_DROPOUT
    drop_p<BN>(s, params.dropout, dropout_batch_head, row_a, n0, tq);
#endif
  }

  // Skipped when no row of the warp changed its max (the common case with the lazy update): one
  // vote instead of NV/2 multiplies per thread. Not in softcap kernels: there the branch made the
  // d=128, BN=176 variant spill (20 bytes), and the tanh per score outweighs the rescale.
  __device__ __forceinline__ void rescale_o(float2 f) {
    if constexpr (!SOFTCAP) {
      if (!warp_any(f.x != 1.f || f.y != 1.f)) return;
    }
#pragma unroll
    for (int c = 0; c < NV / 8; ++c) {
      o[c * 4 + 0] *= f.x;
      o[c * 4 + 1] *= f.x;
      o[c * 4 + 2] *= f.y;
      o[c * 4 + 3] *= f.y;
    }
  }

  // FA_VARLEN: the first key tile of a work tile (the sequence's last) may reach past the
  // sequence, into the next one's rows or unused rows (past seqused, after the last sequence),
  // which may hold NaN or Inf. Their P is 0, but 0 * NaN would poison O: this warpgroup zeroes
  // V's rows [valid, BN) of stage `st` before its P V reads them (hopper/varlen.cuh).
  // Both warpgroups write the same zeros; each fences its writes for the async proxy (wgmma)
  // and syncs its own 128 threads.
  __device__ __forceinline__ void clear_v_tail(const ForwardSmem& sm, int st, int valid) const {
    if (valid >= BN) return;
    zero_tile_rows(sm.v(st), BN, DVP / 64, valid, threadIdx.x % 128, 128);
    fence_async_shared();
    named_sync(3 + cw, 128);
  }

  // The consumer warpgroups' turns (PINGPONG): wait for ours before issuing GEMMs, pass it on
  // after.
  __device__ __forceinline__ void wait_turn() const {
    if constexpr (PINGPONG) named_sync(1 + cw, 256);
  }
  __device__ __forceinline__ void pass_turn() const {
    if constexpr (PINGPONG) named_arrive(2 - cw, 256);
  }
};

// ---------------------------------------------------------------------------------------------
// The mainloop over a work tile's key tiles (from the last to the first), two schedules.
// ---------------------------------------------------------------------------------------------

// Overlapped: S(j+1) = Q K(j+1)^T is issued before P(j) V(j), so the tensor cores work while
// this warpgroup does the softmax of tile j+1 (+5-10 %, run 1).
__device__ __forceinline__ void mainloop_overlapped(
  Consumer& c, const FAHopperForwardParams& params, const ForwardSmem& sm, const ForwardMask& mask,
  const WorkTile& tl, int ring, int qs) {
  const int n_iters = tl.iters();
  {
    const int n0 = (tl.n_hi - 1) * BN;
    sm.wait_k(ring);
    c.wait_turn();
    c.qk_gemm(sm, ring % ST, mask, n0);
    c.pass_turn();
    wg_wait<0>();
    fence_regs(c.s);
    mbar_arrive(sm.empty_k(ring % ST));
    const float2 f = c.softmax(params, mask, n0, mask.template tile_needs_mask<BM, BN>(tl.m0, n0));
    c.drop(params, n0);
    c.convert_p();
    c.rescale_o(f);
  }
  for (int it = 1; it < n_iters; ++it) {
    const int st = (ring + it) % ST;
    const int prev = (ring + it - 1) % ST;
    const int n0 = (tl.n_hi - 1 - it) * BN;
    sm.wait_k(ring + it);
#if FA_VARLEN
    if (it == 1) {
      sm.wait_v(ring);
      c.clear_v_tail(sm, prev, mask.seqlen_k - (tl.n_hi - 1) * BN);
    }
#endif
    c.wait_turn();
    c.qk_gemm(sm, st, mask, n0);
    sm.wait_v(ring + it - 1);
    fence_regs(c.o);
    c.pv_gemm(sm, prev);
    c.pass_turn();
    wg_wait<1>();
    fence_regs(c.s);
    mbar_arrive(sm.empty_k(st));
    const float2 f = c.softmax(params, mask, n0, mask.template tile_needs_mask<BM, BN>(tl.m0, n0));
    wg_wait<0>();
    fence_regs(c.o);
    mbar_arrive(sm.pv_empty(prev));
    c.drop(params, n0);
    c.convert_p();
    c.rescale_o(f);
  }
  {
    // Every QK^T of this tile has completed: Q may be overwritten by the next tile's.
    mbar_arrive(sm.q_empty(qs));
    const int last = (ring + n_iters - 1) % ST;
    sm.wait_v(ring + n_iters - 1);
#if FA_VARLEN
    if (n_iters == 1) c.clear_v_tail(sm, last, mask.seqlen_k - (tl.n_hi - 1) * BN);
#endif
    fence_regs(c.o);
    c.pv_gemm(sm, last);
    wg_wait<0>();
    fence_regs(c.o);
    mbar_arrive(sm.pv_empty(last));
  }
}

// Serial: QK^T, softmax, PV per key tile. With PINGPONG each GEMM's issue is one turn (the turn
// passes right after it): QK^T(A), QK^T(B), PV(A), PV(B). A turn held from QK^T to PV (before
// 2026-12-07) serialised the warpgroups: fp8 d 128 at BN 256 ran at 662-680 TFLOP/s with it,
// 803-833 with one turn per GEMM, 936-965 without turns (H100, r2 and r10), so the tables use
// none; ncu (r11) has the tensor pipe 49 % and the MUFU 50 % busy without turns, 43 % and 43 %
// with them: in neither schedule does one warpgroup's softmax run beside the other's GEMMs.
__device__ __forceinline__ void mainloop_serial(
  Consumer& c, const FAHopperForwardParams& params, const ForwardSmem& sm, const ForwardMask& mask,
  const WorkTile& tl, int ring, int qs) {
  const int n_iters = tl.iters();
  for (int it = 0; it < n_iters; ++it) {
    const int st = (ring + it) % ST;
    const int n0 = (tl.n_hi - 1 - it) * BN;
    sm.wait_k(ring + it);
    c.wait_turn();
    c.qk_gemm(sm, st, mask, n0);
    c.pass_turn();
    wg_wait<0>();
    fence_regs(c.s);
    mbar_arrive(sm.empty_k(st));
    if (it == n_iters - 1) mbar_arrive(sm.q_empty(qs));
    const float2 f = c.softmax(params, mask, n0, mask.template tile_needs_mask<BM, BN>(tl.m0, n0));
    c.drop(params, n0);
    c.convert_p();
    c.rescale_o(f);
    sm.wait_v(ring + it);
#if FA_VARLEN
    if (it == 0) c.clear_v_tail(sm, st, mask.seqlen_k - (tl.n_hi - 1) * BN);
#endif
    fence_regs(c.o);
    c.wait_turn();
    c.pv_gemm(sm, st);
    c.pass_turn();
    wg_wait<0>();
    fence_regs(c.o);
    mbar_arrive(sm.pv_empty(st));
  }
}

// ---------------------------------------------------------------------------------------------
// The consumers: per work tile, the mainloop, then the epilogue (also for a tile with no visible
// key, whose rows get O = 0 and LSE = -inf).
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ void consume(
  const FAHopperForwardParams& params, const ForwardSmem& sm, const Scheduler& scheduler, const ForwardMask& mask) {
  const int tid = threadIdx.x;
  const int warp = (tid / 32) % 4;  // warp in the warpgroup
  const int lane = tid % 32;
  Consumer c;
  c.cw = tid / 128 - 1;
  c.tq = lane % 4;
  c.q_base = sm.q(0) + c.cw * 64 * 128;
  c.row_a = 0;
  c.row_b = 0;
  // The output's layout: 16-byte stores need 16-byte aligned rows, else O goes out as 4-byte pairs.
  const OutputRows out = OutputRows::of(params);
  if constexpr (PINGPONG) {
    // Consumer 0 goes first: pre-arrive on its own scheduling barrier.
    if (c.cw == 0) named_arrive(1, 256);
  }

  int ring = 0;
  int q_loads = 0;
  for_each_sequence_tile(params, scheduler, mask, [&](const WorkTile& tl, const ForwardMask& tile_mask, int q_start, int, int seqlen_q) {
    const int n_iters = tl.iters();
    c.row_a = tl.m0 + c.cw * 64 + warp * 16 + lane / 4;  // this thread's two query rows
    c.row_b = c.row_a + 8;
#pragma unroll
    for (int i = 0; i < NV / 2; ++i) c.o[i] = 0.f;
    c.m_a = -FA_INF;
    c.m_b = -FA_INF;
    c.r_a = -FA_INF;
    c.r_b = -FA_INF;
    c.l_a = 0.f;
    c.l_b = 0.f;
    float o_scale = 1.f;
    if constexpr (FP8) {
      const int kv_head = tl.head / params.group;
      const i64* st = params.descale_strides;
      const float qk = descale_factor(params.q_descale, st[0], st[1], tl.batch, kv_head) *
                       descale_factor(params.k_descale, st[2], st[3], tl.batch, kv_head);
      c.scale_log2 = params.scale_log2 * qk;
      c.softcap_over = params.softcap_over * qk;
      o_scale = descale_factor(params.v_descale, st[4], st[5], tl.batch, kv_head);
    }
#if FA_ALIBI
    c.alibi_slope = alibi_slope_log2(params.alibi_slopes, params.alibi_batch_stride, tl.batch, tl.head) /
                    (SOFTCAP ? 1.f : params.scale_log2);
#endif
#if FA_DROPOUT
    c.dropout_batch_head = dropout_batch_head(params.dropout, tl.batch, tl.head);
    o_scale = params.dropout.keep_scale;  // the kept P's 1 / (1 - p), once per row (hopper/dropout.cuh)
#endif
    const int qs = q_loads % QST;
    c.q_base = sm.q(qs) + c.cw * 64 * 128;
    if (n_iters > 0) mbar_wait(sm.q_full(qs), (q_loads / QST) & 1);
    if constexpr (OVERLAP) {
      if (n_iters > 0) mainloop_overlapped(c, params, sm, tile_mask, tl, ring, qs);
    } else {
      mainloop_serial(c, params, sm, tile_mask, tl, ring, qs);
    }
    if (n_iters > 0) {
      ++q_loads;
      ring += n_iters;
    }
    store_output<NV, DV>(
      out, tl.batch, tl.head, c.o, c.m_a - P_OFFSET, c.m_b - P_OFFSET, c.l_a, c.l_b, c.row_a, c.tq, seqlen_q, q_start,
      o_scale);
  });
}

// ---------------------------------------------------------------------------------------------
// The kernel.
// ---------------------------------------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(128 * (NC + 1), 1) flash_fwd_hopper(
  const __grid_constant__ FAHopperForwardParams params) {
  extern __shared__ unsigned char smem_raw[];
  const ForwardSmem sm(smem_raw);
  const ForwardMask mask(params.seqlen_q, params.seqlen_k, params.window_left, params.window_right);
  const Scheduler scheduler{params.m_blocks, params.heads_q, params.num_items};
  if (threadIdx.x == 0) sm.init_barriers();
#if FA_ALIBI_MMA
  fill_alibi_panel<BN>(sm.alibi_panel, threadIdx.x, blockDim.x);
  fence_async_shared();  // the generic-proxy stores before the consumers' wgmma reads
#endif
  __syncthreads();
  if (threadIdx.x / 128 == 0) {
    setmaxnreg_dec<PRODUCER_REGISTERS>();
    if (threadIdx.x == 0) produce(params, sm, scheduler, mask);
    if constexpr (FP8) {
      if (threadIdx.x >= 32) transpose_ring(sm, scheduler, mask);
    }
    return;
  }
  setmaxnreg_inc<CONSUMER_REGISTERS>();
  consume(params, sm, scheduler, mask);
}

}  // namespace fa_hopper
