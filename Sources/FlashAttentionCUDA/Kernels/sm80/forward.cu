#include "sm80/common.cuh"
// FlashAttention-2 forward. One CTA per (query block, head, batch); each warp owns
// 16 * FA_MT query rows (FA_MT m16 tiles share every K and V fragment it loads). K and V tiles stream through shared memory with cp.async so that the V load overlaps
// S = Q K^T and the next K load overlaps O += P V. Softmax runs online in registers.
//
// Compile-time: FA_D, FA_DV (multiples of 8), FA_BM (16 * FA_MT * warps), FA_BN, FA_WARPS, FA_BF16,
// FA_CAUSAL_OR_WINDOW (masking by key range), FA_SOFTCAP, FA_Q_IN_REGS.
#define D_PAD ((FA_D + 15) / 16 * 16)
#define DV_PAD ((FA_DV + 15) / 16 * 16)
#define THREADS (FA_WARPS * 32)
#define FA_MT (FA_BM / (16 * FA_WARPS))
#if FA_Q_IN_REGS && FA_MT > 1
#error "Q fragments in registers need one m16 tile per warp"
#endif
// Row pitch padded by 16 bytes: consecutive rows start 16 bytes apart mod 128, so the eight
// row addresses of one ldmatrix hit eight different bank groups.
#define QK_PITCH (D_PAD + 8)
#define V_PITCH (DV_PAD + 8)

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_forward(const __grid_constant__ FAForwardParams params) {
  // The pointers as restrict-qualified locals: restrict on a struct member is ignored.
  const u16* __restrict__ q = params.q;
  const u16* __restrict__ k = params.k;
  const u16* __restrict__ v = params.v;
  u16* __restrict__ o = params.o;
  float* __restrict__ lse = params.lse;
  const i64 q_bs = params.q_strides.batch, q_rs = params.q_strides.row, q_hs = params.q_strides.head;
  const i64 k_bs = params.k_strides.batch, k_rs = params.k_strides.row, k_hs = params.k_strides.head;
  const i64 v_bs = params.v_strides.batch, v_rs = params.v_strides.row, v_hs = params.v_strides.head;
  const i64 o_bs = params.o_strides.batch, o_rs = params.o_strides.row, o_hs = params.o_strides.head;
  const i64 lse_bs = params.lse_strides.batch, lse_hs = params.lse_strides.head;
  const int sq = params.seqlen_q, sk = params.seqlen_k, group = params.group;
  const float scale = params.scale, softcap = params.softcap;
  const int left = params.window_left, right = params.window_right;
  extern __shared__ __align__(128) u16 smem[];
  u16* sQ = smem;
  u16* sK = sQ + FA_BM * QK_PITCH;
  u16* sV = sK + FA_BN * QK_PITCH;

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int m_block = blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int kv_head = head / group;
  const int m0 = m_block * FA_BM;

  const u16* gQ = q + batch * q_bs + head * q_hs + (i64)m0 * q_rs;
  const u16* gK = k + batch * k_bs + kv_head * k_hs;
  const u16* gV = v + batch * v_bs + kv_head * v_hs;

  // Keys visible to any row of this block; whole tiles outside are never loaded.
  int n_lo = 0, n_hi = sk;
#if FA_CAUSAL_OR_WINDOW
  {
    KeyRange first = visible_keys(m0, sq, sk, left, right);
    KeyRange last = visible_keys(min(m0 + FA_BM, sq) - 1, sq, sk, left, right);
    n_lo = first.lo;
    n_hi = last.hi;
  }
#endif
  const int tile_lo = n_lo / FA_BN;
  const int tile_hi = n_hi > n_lo ? (n_hi + FA_BN - 1) / FA_BN : tile_lo;

  load_tile<FA_BM, FA_D, D_PAD, QK_PITCH, THREADS>(sQ, gQ, q_rs, sq - m0, tid);
  if (tile_lo < tile_hi) {
    int n0 = tile_lo * FA_BN;
    load_tile<FA_BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, gK + (i64)n0 * k_rs, k_rs, sk - n0, tid);
  }
  cp_async_commit();

  const int g = lane / 4;       // row within the 8-row group of an mma fragment
  const int t = lane % 4;       // column pair within the fragment
  // This thread's rows: row0 + 16 * mt and row0 + 16 * mt + 8.
  const int row0 = m0 + warp * 16 * FA_MT + g;

  float acc_o[FA_MT][DV_PAD / 8][4];
  float row_max[FA_MT][2], row_sum[FA_MT][2];
  #pragma unroll
  for (int mt = 0; mt < FA_MT; ++mt) {
    #pragma unroll
    for (int i = 0; i < DV_PAD / 8; ++i) acc_o[mt][i][0] = acc_o[mt][i][1] = acc_o[mt][i][2] = acc_o[mt][i][3] = 0.f;
    row_max[mt][0] = row_max[mt][1] = -FA_INF;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }

#if FA_SOFTCAP
  const float pre = scale / softcap;   // s = softcap * tanh(qk * scale / softcap)
  const float scale_log2 = FA_LOG2E;
#else
  const float scale_log2 = scale * FA_LOG2E;
#endif

  // ldmatrix lane addresses (element offsets inside a 16x16 operand tile).
  const int a_row = lane % 16, a_col = (lane / 16) * 8;                     // A, row-major
  const int b_row = (lane & 7) + ((lane >> 4) << 3), b_col = ((lane >> 3) & 1) * 8;  // B = K rows
  const int v_row = (lane & 7) + (((lane >> 3) & 1) << 3), v_col = (lane >> 4) * 8;  // B = V^T

  // Per-lane shared-memory byte addresses; every fragment below is base + a constant, so the
  // offsets fold into the ldmatrix immediates instead of occupying registers.
  const u32 q_base = smem_u32(sQ + (warp * 16 * FA_MT + a_row) * QK_PITCH + a_col);
  const u32 k_base = smem_u32(sK + b_row * QK_PITCH + b_col);
  const u32 v_base = smem_u32(sV + v_row * V_PITCH + v_col);

#if FA_Q_IN_REGS
  u32 q_frag[D_PAD / 16][4];
  bool q_loaded = false;
#endif

  for (int tile = tile_lo; tile < tile_hi; ++tile) {
    const int n0 = tile * FA_BN;
    cp_async_wait<0>();
    __syncthreads();   // K[tile] landed; every warp finished P V of the previous tile
    load_tile<FA_BN, FA_DV, DV_PAD, V_PITCH, THREADS>(sV, gV + (i64)n0 * v_rs, v_rs, sk - n0, tid);
    cp_async_commit();

#if FA_Q_IN_REGS
    if (!q_loaded) {
      #pragma unroll
      for (int kk = 0; kk < D_PAD / 16; ++kk)
        ldmatrix_x4(q_base + kk * 32,
                    q_frag[kk][0], q_frag[kk][1], q_frag[kk][2], q_frag[kk][3]);
      q_loaded = true;
    }
#endif

    // S = Q K^T for this warp's rows and FA_BN keys.
    float acc_s[FA_MT][FA_BN / 8][4];
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

#if FA_SOFTCAP
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int i = 0; i < FA_BN / 8; ++i)
        #pragma unroll
        for (int e = 0; e < 4; ++e) acc_s[mt][i][e] = softcap * fast_tanh(acc_s[mt][i][e] * pre);
#endif

    // Mask only tiles that need it: the ragged last tile and tiles crossing a mask boundary.
    bool need_mask = n0 + FA_BN > sk;
#if FA_CAUSAL_OR_WINDOW
    {
      KeyRange first = visible_keys(m0, sq, sk, left, right);
      KeyRange last = visible_keys(min(m0 + FA_BM, sq) - 1, sq, sk, left, right);
      need_mask = need_mask || n0 < last.lo || n0 + FA_BN > first.hi;
    }
#endif
    if (need_mask) {
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt)
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
          KeyRange r;
#if FA_CAUSAL_OR_WINDOW
          r = visible_keys(row0 + mt * 16 + half * 8, sq, sk, left, right);
#else
          r.lo = 0; r.hi = sk;
#endif
          #pragma unroll
          for (int i = 0; i < FA_BN / 8; ++i)
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
              int j = n0 + i * 8 + 2 * t + e;
              if (j < r.lo || j >= r.hi) acc_s[mt][i][half * 2 + e] = -FA_INF;
            }
        }
    }

    // Online softmax: new running max, rescale O and the running sum, P = 2^(s*c - m*c).
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = row_max[mt][half];
        #pragma unroll
        for (int i = 0; i < FA_BN / 8; ++i) mx = fmaxf(mx, fmaxf(acc_s[mt][i][half * 2], acc_s[mt][i][half * 2 + 1]));
        mx = quad_max(mx);
        // A row with nothing visible yet keeps max -inf; use 0 so exponents stay -inf, not NaN.
        float base = mx == -FA_INF ? 0.f : mx * scale_log2;
        float corr = ex2(row_max[mt][half] * scale_log2 - base);
        row_max[mt][half] = mx;
        float sum = 0.f;
        #pragma unroll
        for (int i = 0; i < FA_BN / 8; ++i)
          #pragma unroll
          for (int e = 0; e < 2; ++e) {
            float p = ex2(acc_s[mt][i][half * 2 + e] * scale_log2 - base);
            acc_s[mt][i][half * 2 + e] = p;
            sum += p;
          }
        row_sum[mt][half] = row_sum[mt][half] * corr + sum;
        #pragma unroll
        for (int i = 0; i < DV_PAD / 8; ++i) { acc_o[mt][i][half * 2] *= corr; acc_o[mt][i][half * 2 + 1] *= corr; }
      }

    cp_async_wait<0>();
    __syncthreads();   // V[tile] landed; every warp finished reading K[tile]
    if (tile + 1 < tile_hi) {
      int n1 = n0 + FA_BN;
      load_tile<FA_BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, gK + (i64)n1 * k_rs, k_rs, sk - n1, tid);
    }
    cp_async_commit();

    // O += P V: P's accumulator layout is the A-operand layout, so it never leaves registers.
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
      for (int nn = 0; nn < DV_PAD / 16; ++nn) {
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

  // Epilogue: O / l and LSE; a row with no visible key gets O = 0 and LSE = -inf.
  #pragma unroll
  for (int mt = 0; mt < FA_MT; ++mt)
    #pragma unroll
    for (int half = 0; half < 2; ++half) {
      float total = quad_sum(row_sum[mt][half]);
      int row = row0 + mt * 16 + half * 8;
      float inv = total > 0.f ? 1.f / total : 0.f;
      if (row < sq) {
        u16* gO = o + batch * o_bs + head * o_hs + (i64)row * o_rs;
        #pragma unroll
        for (int i = 0; i < DV_PAD / 8; ++i) {
          int col = i * 8 + 2 * t;
          if (col < FA_DV)
            *(u32*)(gO + col) = pack2(acc_o[mt][i][half * 2] * inv, acc_o[mt][i][half * 2 + 1] * inv);
        }
        if (t == 0) {
          float value = total > 0.f ? (row_max[mt][half] * scale_log2 + __log2f(total)) * FA_LN2 : -FA_INF;
          lse[batch * lse_bs + head * lse_hs + row] = value;
        }
      }
    }
}
