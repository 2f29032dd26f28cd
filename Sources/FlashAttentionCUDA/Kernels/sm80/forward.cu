// FlashAttention-2 forward (sm80 and later: mma.sync m16n8k16, ldmatrix, cp.async). One CTA per
// (query block, head, batch); each warp owns 16 * FA_MT query rows (FA_MT m16 tiles share every
// K and V fragment it loads). K and V tiles stream through shared memory with cp.async so that
// the V load overlaps S = Q K^T and the next K load overlaps O += P V. The softmax runs online
// in registers (common/softmax.cuh), the mask comes from common/mask.cuh.
//
// The host prepends the kernel key's #defines: FA_D, FA_DV (multiples of 8), FA_BM
// (16 * FA_MT * warps), FA_BN, FA_WARPS, FA_BF16, FA_MASK (0 none, 2 a window with run-time
// bounds; causal is the window (left, 0)), FA_SOFTCAP, FA_Q_IN_REGS, FA_ALIBI (common/alibi.cuh), FA_DROPOUT (common/dropout.cuh),
// FA_VARLEN (packed sequences: the batch index selects a sequence of cu_seqlens, whose own
// lengths bound the tiles and the mask; the grid covers the longest), and FA_VGROUPS (heads
// past 256: O's columns split over that many groups of FA_WARPS warps, each group computing
// the same S for its rows and O for its share of d_v; absent: 1).
#include "common/alibi.cuh"
#include "common/dropout.cuh"
#include "common/mask.cuh"
#include "common/varlen.cuh"
#include "common/softmax.cuh"
#include "sm80/ptx.cuh"
#include "sm80/online_softmax.cuh"
#include "sm80/tiles.cuh"

#ifndef FA_VGROUPS
#define FA_VGROUPS 1
#endif
#define D_PAD ((FA_D + 15) / 16 * 16)
// V's columns padded to whole 16-column ldmatrix tiles per value group.
#define DV_PAD ((FA_DV + 16 * FA_VGROUPS - 1) / (16 * FA_VGROUPS) * (16 * FA_VGROUPS))
#define THREADS (FA_WARPS * 32 * FA_VGROUPS)
#define FA_MT (FA_BM / (16 * FA_WARPS))
// O's columns per warp: a warp holds rows x DV_WARP fp32 accumulators (128 a thread at 256).
#define DV_WARP (DV_PAD / FA_VGROUPS)
#if DV_WARP % 16 != 0
#error "each value group takes whole 16-column ldmatrix tiles"
#endif
#if FA_Q_IN_REGS && FA_MT > 1
#error "Q fragments in registers need one m16 tile per warp"
#endif
// Row pitch padded by 16 bytes: consecutive rows start 16 bytes apart mod 128, so the eight
// row addresses of one ldmatrix hit eight different bank groups.
#define QK_PITCH (D_PAD + 8)
#define V_PITCH (DV_PAD + 8)

constexpr MaskKind MASK = MaskKind(FA_MASK);

// One warp's part of the block: its rows' S (one m16 x FA_BN fragment per m-tile), O, and the
// rows' softmax state (row r = row0 + 16 mt + 8 half).
struct ForwardWarp {
  float acc_o[FA_MT][DV_WARP / 8][4];
  float row_max[FA_MT][2], row_sum[FA_MT][2];
  float raw_max[FA_MT][2];  // the raw score whose product row_max is (the exact exponent's offset)
  float acc_s[FA_MT][FA_BN / 8][4];
  int row0, t;
#if FA_VGROUPS > 1
  int col0;  // this warp's first column of O (its value group's)
  bool writes_lse;
#endif
  // Per-lane shared-memory byte addresses; every fragment is base + a constant, so the offsets
  // fold into the ldmatrix immediates instead of occupying registers.
  u32 q_base, k_base, v_base;
#if FA_Q_IN_REGS
  u32 q_frag[D_PAD / 16][4];
#endif

  // S = Q K^T for this warp's rows and FA_BN keys.
  __device__ __forceinline__ void qk() {
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int i = 0; i < FA_BN / 8; ++i) acc_s[mt][i][0] = acc_s[mt][i][1] = acc_s[mt][i][2] = acc_s[mt][i][3] = 0.f;
    #pragma unroll
    for (int kk = 0; kk < D_PAD / 16; ++kk) {
      u32 a[FA_MT][4];
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt) {
#if FA_Q_IN_REGS
        a[mt][0] = q_frag[kk][0]; a[mt][1] = q_frag[kk][1]; a[mt][2] = q_frag[kk][2]; a[mt][3] = q_frag[kk][3];
#else
        ldmatrix_x4(q_base + (mt * 16 * QK_PITCH + kk * 16) * 2, a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
#endif
      }
      #pragma unroll
      for (int nn = 0; nn < FA_BN / 16; ++nn) {
        u32 b0, b1, b2, b3;
        ldmatrix_x4(k_base + (nn * 16 * QK_PITCH + kk * 16) * 2, b0, b1, b2, b3);
        #pragma unroll
        for (int mt = 0; mt < FA_MT; ++mt) {
          mma16816(acc_s[mt][2 * nn], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b0, b1);
          mma16816(acc_s[mt][2 * nn + 1], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b2, b3);
        }
      }
    }
  }

  // Hides the keys of tile n0 that a row may not see (-inf scores), then the online softmax:
  // P = 2^(s·c - m) in place of S, O and l rescaled. `c` is scale·log2(e) (the softcap has
  // folded the scale already).
  __device__ __forceinline__ void softmax(const Mask<MASK>& mask, int n0, bool masked, float c) {
    if (masked) {
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt)
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
          const ColumnRange keys = mask.key_columns(row0 + mt * 16 + half * 8, n0 + 2 * t);
          #pragma unroll
          for (int i = 0; i < FA_BN / 8; ++i)
            #pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keys.hides(i * 8 + e)) acc_s[mt][i][half * 2 + e] = -FA_INF;
        }
    }
    online_softmax_step(acc_s, acc_o, row_max, raw_max, row_sum, c);
  }

#if FA_DROPOUT
  // P times each element's keep factor (0 or 1 / (1 - p)) before P V; the row sums above stay
  // the undropped softmax's, so O = (P * Z) V / l and the LSE is the undropped one (FA2's rule).
  __device__ __forceinline__ void drop(const Dropout& dropout, int n0) {
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int half = 0; half < 2; ++half) {
        const u64 keep = dropout.keep_bits<FA_BN / 8>(row0 + mt * 16 + half * 8, n0 >> 3, t);
        #pragma unroll
        for (int i = 0; i < FA_BN / 8; ++i) {
          acc_s[mt][i][half * 2] *= dropout.factor(keep, 2 * i);
          acc_s[mt][i][half * 2 + 1] *= dropout.factor(keep, 2 * i + 1);
        }
      }
  }
#endif

  // O += P V: P's accumulator layout is the A-operand layout, so it never leaves registers.
  __device__ __forceinline__ void pv() {
    #pragma unroll
    for (int kk = 0; kk < FA_BN / 16; ++kk) {
      u32 a[FA_MT][4];
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt) {
        a[mt][0] = pack2(acc_s[mt][2 * kk][0], acc_s[mt][2 * kk][1]);
        a[mt][1] = pack2(acc_s[mt][2 * kk][2], acc_s[mt][2 * kk][3]);
        a[mt][2] = pack2(acc_s[mt][2 * kk + 1][0], acc_s[mt][2 * kk + 1][1]);
        a[mt][3] = pack2(acc_s[mt][2 * kk + 1][2], acc_s[mt][2 * kk + 1][3]);
      }
      #pragma unroll
      for (int nn = 0; nn < DV_WARP / 16; ++nn) {
        u32 b0, b1, b2, b3;
        ldmatrix_x4_trans(v_base + (kk * 16 * V_PITCH + nn * 16) * 2, b0, b1, b2, b3);
        #pragma unroll
        for (int mt = 0; mt < FA_MT; ++mt) {
          mma16816(acc_o[mt][2 * nn], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b0, b1);
          mma16816(acc_o[mt][2 * nn + 1], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b2, b3);
        }
      }
    }
  }

  // O / l and the LSE of the rows below seqlen_q (`sq`; the sequence starts at packed row
  // `start`); a row with no visible key gets O = 0 and LSE = -inf.
  __device__ __forceinline__ void store(const FAForwardParams& params, int batch, int head, int sq, int start) {
    u16* __restrict__ o = params.o;
    float* __restrict__ lse = params.lse;
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int half = 0; half < 2; ++half) {
        const float total = quad_sum(row_sum[mt][half]);
        const int row = row0 + mt * 16 + half * 8;
        const float inv = inverse_sum(total);
        if (row < sq) {
          u16* gO = o + batch * params.o_strides.batch + head * params.o_strides.head + (i64)(start + row) * params.o_strides.row;
          #pragma unroll
          for (int i = 0; i < DV_WARP / 8; ++i) {
#if FA_VGROUPS > 1
            const int col = col0 + i * 8 + 2 * t;
#else
            const int col = i * 8 + 2 * t;
#endif
            if (col < FA_DV)
              *(u32*)(gO + col) = pack2(acc_o[mt][i][half * 2] * inv, acc_o[mt][i][half * 2 + 1] * inv);
          }
#if FA_VGROUPS > 1
          if (t == 0 && writes_lse) {
#else
          if (t == 0) {
#endif
            lse[batch * params.lse_strides.batch + head * params.lse_strides.head + start + row] = row_lse(row_max[mt][half], total);
          }
        }
      }
  }
};

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_forward(const __grid_constant__ FAForwardParams params) {
  // The inputs as restrict-qualified locals: restrict on a struct member is ignored.
  const u16* __restrict__ q = params.q;
  const u16* __restrict__ k = params.k;
  const u16* __restrict__ v = params.v;
#if !FA_VARLEN
  const int sq = params.seqlen_q, sk = params.seqlen_k;
#endif
  extern __shared__ __align__(128) u16 smem[];
  u16* sQ = smem;
  u16* sK = sQ + FA_BM * QK_PITCH;
  u16* sV = sK + FA_BN * QK_PITCH;

  const int tid = threadIdx.x;
#if FA_VGROUPS > 1
  const int warp = (tid / 32) % FA_WARPS;       // this warp's rows
  const int value_group = (tid / 32) / FA_WARPS; // and its share of O's columns
#else
  const int warp = tid / 32;
#endif
  const int lane = tid % 32;
  const int head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / params.group;
  const int m0 = blockIdx.x * FA_BM;
#if FA_VARLEN
  // This batch entry's sequence: its own lengths and first rows.
  const SequenceRows seq_q = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, params.seqlen_q);
  const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, batch, params.seqlen_k);
  const int sq = seq_q.used, sk = seq_k.used;
  if (m0 >= sq) return;   // the grid covers the longest sequence; this one is shorter
#else
  // Fixed length: start 0, the lengths declared and the epilogue's bound read where they always
  // were, so the machine code is the same as before varlen (scripts/sass-digest.py).
  constexpr SequenceRows seq_q{0, 0}, seq_k{0, 0};
#endif
  const i64 k_rs = params.k_strides.row, v_rs = params.v_strides.row;
  const u16* gQ = q + batch * params.q_strides.batch + head * params.q_strides.head + (i64)(seq_q.start + m0) * params.q_strides.row;
  const u16* gK = k + batch * params.k_strides.batch + kv_head * params.k_strides.head + (i64)seq_k.start * k_rs;
  const u16* gV = v + batch * params.v_strides.batch + kv_head * params.v_strides.head + (i64)seq_k.start * v_rs;

  // The key tiles some row of this block can see; tiles outside are never loaded.
  const Mask<MASK> mask(sq, sk, params.window_left, params.window_right);
  const BlockRange tiles = mask.key_blocks<FA_BM, FA_BN>(m0);

  load_tile<FA_BM, FA_D, D_PAD, QK_PITCH, THREADS>(sQ, gQ, params.q_strides.row, sq - m0, tid);
  if (tiles.count() > 0) {
    const int n0 = tiles.lo * FA_BN;
    load_tile<FA_BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, gK + (i64)n0 * k_rs, k_rs, sk - n0, tid);
  }
  cp_async_commit();

  ForwardWarp w;
  w.t = lane % 4;                                 // column pair within an mma fragment
  w.row0 = m0 + warp * 16 * FA_MT + lane / 4;     // this thread's rows: row0 + 16 mt (+ 8)
  #pragma unroll
  for (int mt = 0; mt < FA_MT; ++mt) {
    #pragma unroll
    for (int i = 0; i < DV_WARP / 8; ++i) w.acc_o[mt][i][0] = w.acc_o[mt][i][1] = w.acc_o[mt][i][2] = w.acc_o[mt][i][3] = 0.f;
    w.row_max[mt][0] = w.row_max[mt][1] = -FA_INF;
    w.raw_max[mt][0] = w.raw_max[mt][1] = -FA_INF;
    w.row_sum[mt][0] = w.row_sum[mt][1] = 0.f;
  }
  // ldmatrix lane addresses: A row-major (Q), B = K rows, B = V^T.
  w.q_base = smem_u32(sQ + (warp * 16 * FA_MT + lane % 16) * QK_PITCH + (lane / 16) * 8);
  w.k_base = smem_u32(sK + ((lane & 7) + ((lane >> 4) << 3)) * QK_PITCH + ((lane >> 3) & 1) * 8);
  w.v_base = smem_u32(sV + ((lane & 7) + (((lane >> 3) & 1) << 3)) * V_PITCH + (lane >> 4) * 8);
#if FA_VGROUPS > 1
  w.col0 = value_group * DV_WARP;
  w.writes_lse = value_group == 0;
  w.v_base += w.col0 * 2;
#endif
#if FA_SOFTCAP
  const float pre = params.scale / params.softcap;  // s = softcap * tanh(qk * scale / softcap)
  const float c = FA_LOG2E;
#else
  const float c = params.scale * FA_LOG2E;
#endif
#if FA_ALIBI
  // Raw scores are qk (unit: the scale) or capped scores (unit 1).
  const Alibi alibi(params.alibi_slopes, batch * params.alibi_batch_stride + head, FA_SOFTCAP ? 1.f : params.scale, sq, sk);
#endif
#if FA_DROPOUT
  const Dropout dropout(params.dropout, batch, head);
#endif
#if FA_Q_IN_REGS
  bool q_loaded = false;
#endif

  for (int tile = tiles.lo; tile < tiles.hi; ++tile) {
    const int n0 = tile * FA_BN;
    cp_async_wait<0>();
    __syncthreads();   // K[tile] landed; every warp finished P V of the previous tile
    load_tile<FA_BN, FA_DV, DV_PAD, V_PITCH, THREADS>(sV, gV + (i64)n0 * v_rs, v_rs, sk - n0, tid);
    cp_async_commit();
#if FA_Q_IN_REGS
    if (!q_loaded) {
      #pragma unroll
      for (int kk = 0; kk < D_PAD / 16; ++kk)
        ldmatrix_x4(w.q_base + kk * 32, w.q_frag[kk][0], w.q_frag[kk][1], w.q_frag[kk][2], w.q_frag[kk][3]);
      q_loaded = true;
    }
#endif

    w.qk();
#if FA_SOFTCAP
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int i = 0; i < FA_BN / 8; ++i)
        #pragma unroll
        for (int e = 0; e < 4; ++e) w.acc_s[mt][i][e] = params.softcap * tanh_approx(w.acc_s[mt][i][e] * pre);
#endif
#if FA_ALIBI
    // This thread's elements: rows row0 + 16 mt (+ 8 for e >= 2), keys n0 + 8 i + 2 t (+ 1 for odd e).
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int i = 0; i < FA_BN / 8; ++i)
        #pragma unroll
        for (int e = 0; e < 4; ++e)
          w.acc_s[mt][i][e] += alibi.bias(w.row0 + mt * 16 + (e / 2) * 8, n0 + i * 8 + 2 * w.t + (e % 2));
#endif
    // Only the tiles that need it are masked: the ragged last tile and tiles crossing a mask edge.
    w.softmax(mask, n0, mask.tile_needs_mask<FA_BM, FA_BN>(m0, n0), c);
#if FA_DROPOUT
    w.drop(dropout, n0);
#endif

    cp_async_wait<0>();
    __syncthreads();   // V[tile] landed; every warp finished reading K[tile]
    if (tile + 1 < tiles.hi) {
      const int n1 = n0 + FA_BN;
      load_tile<FA_BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, gK + (i64)n1 * k_rs, k_rs, sk - n1, tid);
    }
    cp_async_commit();
    w.pv();
  }

#if FA_VARLEN
  w.store(params, batch, head, sq, seq_q.start);
#else
  w.store(params, batch, head, params.seqlen_q, 0);
#endif
}
