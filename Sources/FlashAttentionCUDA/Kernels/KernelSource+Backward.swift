// Embedded CUDA C++ source; compiled at run time by NVRTC (no CUDA headers needed).
extension KernelSource {
  /// The FlashAttention-2 backward kernels: D = rowsum(dO * O), dK/dV per key block, dQ in fp32.
  static let backward = #"""
// FlashAttention-2 backward, three kernels:
//   flash_backward_preprocess  D = rowsum(dO * O) and the LSE in log2 units, per query row;
//   flash_backward_kv          one CTA per (key block, kv head, batch): recomputes P, and
//                              accumulates dV = P^T dO and dK = dS^T Q in registers over the
//                              query blocks of every query head of the GQA group; adds
//                              dQ += dS K into an fp32 buffer with atomics;
//   flash_backward_convert_dq  dQ = scale * accumulator, to the storage dtype.
// Each warp owns 16 keys. Q, dO, LSE and D of the next query block are prefetched with
// cp.async into a second buffer while the current block computes. FA_BWD_PASS 1 computes dV only and 2 computes dK and dQ only, for
// head dims whose dK and dV accumulators do not fit in registers together (0: both at once).
#define D_PAD ((FA_D + 15) / 16 * 16)
#define DV_PAD ((FA_DV + 15) / 16 * 16)
#define THREADS (FA_WARPS * 32)
#define QK_PITCH (D_PAD + 8)
#define V_PITCH (DV_PAD + 8)
#define DS_PITCH (FA_BM + 8)
#define WANT_DV (FA_BWD_PASS != 2)
#define WANT_DK (FA_BWD_PASS != 1)

#ifdef FA_ENTRY_flash_backward_preprocess
// One warp per query row; lanes stride over the head dim.
extern "C" __global__ void __launch_bounds__(128)
flash_backward_preprocess(const u16* __restrict__ o, const u16* __restrict__ dout,
                          const float* __restrict__ lse, float* __restrict__ lse2_out,
                          float* __restrict__ delta_out,
                          i64 o_bs, i64 o_rs, i64 o_hs, i64 do_bs, i64 do_rs, i64 do_hs,
                          i64 lse_bs, i64 lse_hs, int sq, int hq) {
  const int row = blockIdx.x * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int head = blockIdx.y, batch = blockIdx.z;
  if (row >= sq) return;
  const u16* po = o + batch * o_bs + head * o_hs + (i64)row * o_rs;
  const u16* pd = dout + batch * do_bs + head * do_hs + (i64)row * do_rs;
  float sum = 0.f;
  for (int c = lane; c < FA_DV; c += 32) sum += to_float(po[c]) * to_float(pd[c]);
  #pragma unroll
  for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffff, sum, off);
  if (lane == 0) {
    i64 idx = ((i64)batch * hq + head) * sq + row;
    float l = lse[batch * lse_bs + head * lse_hs + row];
    // A row that saw no key has LSE -inf and P = 0 everywhere: +inf makes exp2(s - lse) = 0.
    lse2_out[idx] = l == -FA_INF ? FA_INF : l * FA_LOG2E;
    delta_out[idx] = sum;
  }
}
#endif

#ifdef FA_ENTRY_flash_backward_convert_dq
extern "C" __global__ void __launch_bounds__(256)
flash_backward_convert_dq(const float* __restrict__ accum, u16* __restrict__ dq,
                          i64 dq_bs, i64 dq_rs, i64 dq_hs, int sq, int hq, float scale) {
  // accum is [batch, sq, hq, FA_D] contiguous; each thread converts one pair.
  i64 pairs = (i64)sq * hq * (FA_D / 2);
  const int batch = blockIdx.y;
  for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (i64)gridDim.x * blockDim.x) {
    int c = (int)(p % (FA_D / 2)) * 2;
    i64 rest = p / (FA_D / 2);
    int h = (int)(rest % hq);
    int i = (int)(rest / hq);
    const float* src = accum + (((i64)batch * sq + i) * hq + h) * FA_D + c;
    *(u32*)(dq + batch * dq_bs + (i64)i * dq_rs + h * dq_hs + c) = pack2(src[0] * scale, src[1] * scale);
  }
}
#endif

#ifdef FA_ENTRY_flash_backward_kv
// dQ accumulation: one vector reduction of a column pair on Hopper, two scalar ones before.
__device__ __forceinline__ void red_add2(float* address, float a, float b) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" :: "l"(address), "f"(a), "f"(b) : "memory");
#else
  asm volatile("red.global.add.f32 [%0], %1;\n" :: "l"(address), "f"(a) : "memory");
  asm volatile("red.global.add.f32 [%0], %1;\n" :: "l"(address + 1), "f"(b) : "memory");
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_backward_kv(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
                  const u16* __restrict__ dout, const float* __restrict__ lse2,
                  const float* __restrict__ delta, float* __restrict__ dq_accum,
                  u16* __restrict__ dk, u16* __restrict__ dv,
                  i64 q_bs, i64 q_rs, i64 q_hs, i64 k_bs, i64 k_rs, i64 k_hs,
                  i64 v_bs, i64 v_rs, i64 v_hs, i64 do_bs, i64 do_rs, i64 do_hs,
                  i64 dk_bs, i64 dk_rs, i64 dk_hs, i64 dv_bs, i64 dv_rs, i64 dv_hs,
                  int sq, int sk, int group, float scale, float softcap, int left, int right) {
  extern __shared__ __align__(128) u16 smem[];
  constexpr int BN = FA_WARPS * 16;
  u16* sK = smem;
  u16* sV = sK + BN * QK_PITCH;
  u16* sQbuf = sV + BN * V_PITCH;                 // [2][FA_BM][QK_PITCH]
  u16* sdObuf = sQbuf + 2 * FA_BM * QK_PITCH;      // [2][FA_BM][V_PITCH]
  u16* sdS = sdObuf + 2 * FA_BM * V_PITCH;
  float* sLSEbuf = (float*)(sdS + BN * DS_PITCH);  // [2][FA_BM]
  float* sDeltabuf = sLSEbuf + 2 * FA_BM;          // [2][FA_BM]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int n0 = blockIdx.x * BN;
  const int kv_head = blockIdx.y, batch = blockIdx.z;
  const int hq = gridDim.y * group;
  const int off = sk - sq;   // bottom-right alignment

  load_tile<BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, k + batch * k_bs + kv_head * k_hs + (i64)n0 * k_rs, k_rs, sk - n0, tid);
  load_tile<BN, FA_DV, DV_PAD, V_PITCH, THREADS>(sV, v + batch * v_bs + kv_head * v_hs + (i64)n0 * v_rs, v_rs, sk - n0, tid);
  cp_async_commit();

  // Queries that see any key of this block.
  int i_lo = 0, i_hi = sq;
#if FA_CAUSAL_OR_WINDOW
  if (right >= 0) i_lo = max(0, n0 - off - right);
  if (left >= 0) i_hi = min(sq, min(n0 + BN, sk) - 1 - off + left + 1);
#endif
  const int m_first = i_lo / FA_BM;
  const int m_last = i_hi > i_lo ? (i_hi + FA_BM - 1) / FA_BM : m_first;

#if FA_SOFTCAP
  const float pre = scale / softcap;
  const float scale_log2 = FA_LOG2E;
#else
  const float scale_log2 = scale * FA_LOG2E;
#endif

  const int a_row = lane % 16, a_col = (lane / 16) * 8;
  const int b_row = (lane & 7) + ((lane >> 4) << 3), b_col = ((lane >> 3) & 1) * 8;
  const int t_row = (lane & 7) + (((lane >> 3) & 1) << 3), t_col = (lane >> 4) * 8;
  const int key_row0 = n0 + warp * 16 + g;
  // Per-lane shared-memory byte addresses; fragments are base + constant offsets.
  const u32 k_a = smem_u32(sK + (warp * 16 + a_row) * QK_PITCH + a_col);
  const u32 v_a = smem_u32(sV + (warp * 16 + a_row) * V_PITCH + a_col);
  const u32 k_t = smem_u32(sK + t_row * QK_PITCH + t_col);

#if WANT_DK
  float acc_dk[D_PAD / 8][4];
  #pragma unroll
  for (int i = 0; i < D_PAD / 8; ++i) acc_dk[i][0] = acc_dk[i][1] = acc_dk[i][2] = acc_dk[i][3] = 0.f;
#endif
#if WANT_DV
  float acc_dv[DV_PAD / 8][4];
  #pragma unroll
  for (int i = 0; i < DV_PAD / 8; ++i) acc_dv[i][0] = acc_dv[i][1] = acc_dv[i][2] = acc_dv[i][3] = 0.f;
#endif

  // Steps run over (query head of the group, query block); step s uses buffer s % 2.
  const int blocks_per_head = m_last - m_first;
  const int steps = group * blocks_per_head;
  auto issue_load = [&](int step) {
    const int head = kv_head * group + step / blocks_per_head;
    const int m0 = (m_first + step % blocks_per_head) * FA_BM;
    const int buf = step & 1;
    load_tile<FA_BM, FA_D, D_PAD, QK_PITCH, THREADS>(sQbuf + buf * FA_BM * QK_PITCH,
        q + batch * q_bs + head * q_hs + (i64)m0 * q_rs, q_rs, sq - m0, tid);
    load_tile<FA_BM, FA_DV, DV_PAD, V_PITCH, THREADS>(sdObuf + buf * FA_BM * V_PITCH,
        dout + batch * do_bs + head * do_hs + (i64)m0 * do_rs, do_rs, sq - m0, tid);
    const i64 ws = ((i64)batch * hq + head) * sq;
    for (int r = tid; r < FA_BM; r += THREADS) {
      // Rows past sq are masked out below; their LSE and D are zero-filled.
      bool in = m0 + r < sq;
      cp_async4(smem_u32(sLSEbuf + buf * FA_BM + r), lse2 + (in ? ws + m0 + r : 0), in);
      cp_async4(smem_u32(sDeltabuf + buf * FA_BM + r), delta + (in ? ws + m0 + r : 0), in);
    }
    cp_async_commit();
  };
  if (steps > 0) issue_load(0);

  for (int step = 0; step < steps; ++step) {
    const int head = kv_head * group + step / blocks_per_head;
    const int m0 = (m_first + step % blocks_per_head) * FA_BM;
    const int buf = step & 1;
    const u16* sQ = sQbuf + buf * FA_BM * QK_PITCH;
    const u16* sdO = sdObuf + buf * FA_BM * V_PITCH;
    const float* sLSE = sLSEbuf + buf * FA_BM;
    const float* sDelta = sDeltabuf + buf * FA_BM;
    if (step + 1 < steps) {
      issue_load(step + 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();   // this step's Q, dO, LSE, D (and K, V on the first step) landed
    const u32 q_b = smem_u32(sQ + b_row * QK_PITCH + b_col);
    const u32 q_t = smem_u32(sQ + t_row * QK_PITCH + t_col);
    const u32 do_b = smem_u32(sdO + b_row * V_PITCH + b_col);
    const u32 do_t = smem_u32(sdO + t_row * V_PITCH + t_col);
    {
      // S^T = K Q^T: this warp's 16 keys against FA_BM queries.
      float acc_s[FA_BM / 8][4];
      #pragma unroll
      for (int i = 0; i < FA_BM / 8; ++i) acc_s[i][0] = acc_s[i][1] = acc_s[i][2] = acc_s[i][3] = 0.f;
      #pragma unroll
      for (int kk = 0; kk < D_PAD / 16; ++kk) {
        u32 a0, a1, a2, a3;
        ldmatrix_x4(k_a + kk * 32, a0, a1, a2, a3);
        #pragma unroll
        for (int nn = 0; nn < FA_BM / 16; ++nn) {
          u32 b0, b1, b2, b3;
          ldmatrix_x4(q_b + (nn * 16 * QK_PITCH + kk * 16) * 2, b0, b1, b2, b3);
          mma16816(acc_s[2 * nn], a0, a1, a2, a3, b0, b1);
          mma16816(acc_s[2 * nn + 1], a0, a1, a2, a3, b2, b3);
        }
      }

      // P^T = exp2(s * c - lse2), zero where masked or out of range.
#if FA_SOFTCAP
      float dcap[FA_BM / 8][4];
#endif
      bool need_mask = m0 + FA_BM > sq || n0 + BN > sk;
#if FA_CAUSAL_OR_WINDOW
      {
        KeyRange first = visible_keys(m0, sq, sk, left, right);
        KeyRange last = visible_keys(min(m0 + FA_BM, sq) - 1, sq, sk, left, right);
        need_mask = need_mask || n0 < last.lo || n0 + BN > first.hi;
      }
#endif
      #pragma unroll
      for (int i = 0; i < FA_BM / 8; ++i) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = i * 8 + 2 * t + (e & 1);     // query within the block
          const int key = key_row0 + (e >> 1) * 8;
          float s = acc_s[i][e];
#if FA_SOFTCAP
          float th = fast_tanh(s * pre);
          s = softcap * th;
          dcap[i][e] = 1.f - th * th;
#endif
          float p = ex2(s * scale_log2 - sLSE[col]);
          if (need_mask) {
            KeyRange r;
            int qi = m0 + col;
#if FA_CAUSAL_OR_WINDOW
            r = visible_keys(qi, sq, sk, left, right);
#else
            r.lo = 0; r.hi = sk;
#endif
            if (qi >= sq || key < r.lo || key >= r.hi) p = 0.f;
          }
          acc_s[i][e] = p;
        }
      }

#if WANT_DV
      // dV += P^T dO (A = P^T from registers, B = dO rows via ldmatrix.trans).
      #pragma unroll
      for (int kk = 0; kk < FA_BM / 16; ++kk) {
        u32 a0 = pack2(acc_s[2 * kk][0], acc_s[2 * kk][1]);
        u32 a1 = pack2(acc_s[2 * kk][2], acc_s[2 * kk][3]);
        u32 a2 = pack2(acc_s[2 * kk + 1][0], acc_s[2 * kk + 1][1]);
        u32 a3 = pack2(acc_s[2 * kk + 1][2], acc_s[2 * kk + 1][3]);
        #pragma unroll
        for (int nn = 0; nn < DV_PAD / 16; ++nn) {
          u32 b0, b1, b2, b3;
          ldmatrix_x4_trans(do_t + (kk * 16 * V_PITCH + nn * 16) * 2, b0, b1, b2, b3);
          mma16816(acc_dv[2 * nn], a0, a1, a2, a3, b0, b1);
          mma16816(acc_dv[2 * nn + 1], a0, a1, a2, a3, b2, b3);
        }
      }
#endif

#if WANT_DK
      // dP^T = V dO^T.
      float acc_dp[FA_BM / 8][4];
      #pragma unroll
      for (int i = 0; i < FA_BM / 8; ++i) acc_dp[i][0] = acc_dp[i][1] = acc_dp[i][2] = acc_dp[i][3] = 0.f;
      #pragma unroll
      for (int kk = 0; kk < DV_PAD / 16; ++kk) {
        u32 a0, a1, a2, a3;
        ldmatrix_x4(v_a + kk * 32, a0, a1, a2, a3);
        #pragma unroll
        for (int nn = 0; nn < FA_BM / 16; ++nn) {
          u32 b0, b1, b2, b3;
          ldmatrix_x4(do_b + (nn * 16 * V_PITCH + kk * 16) * 2, b0, b1, b2, b3);
          mma16816(acc_dp[2 * nn], a0, a1, a2, a3, b0, b1);
          mma16816(acc_dp[2 * nn + 1], a0, a1, a2, a3, b2, b3);
        }
      }
      // dS^T = P^T * (dP^T - D) (* dtanh for softcap), kept in acc_dp; also staged in smem
      // as [key][query] for dQ.
      #pragma unroll
      for (int i = 0; i < FA_BM / 8; ++i) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = i * 8 + 2 * t + (e & 1);
          float ds = acc_s[i][e] * (acc_dp[i][e] - sDelta[col]);
#if FA_SOFTCAP
          ds *= dcap[i][e];
#endif
          acc_dp[i][e] = ds;
        }
        *(u32*)(sdS + (warp * 16 + g) * DS_PITCH + i * 8 + 2 * t) = pack2(acc_dp[i][0], acc_dp[i][1]);
        *(u32*)(sdS + (warp * 16 + g + 8) * DS_PITCH + i * 8 + 2 * t) = pack2(acc_dp[i][2], acc_dp[i][3]);
      }
      // dK += dS^T Q.
      #pragma unroll
      for (int kk = 0; kk < FA_BM / 16; ++kk) {
        u32 a0 = pack2(acc_dp[2 * kk][0], acc_dp[2 * kk][1]);
        u32 a1 = pack2(acc_dp[2 * kk][2], acc_dp[2 * kk][3]);
        u32 a2 = pack2(acc_dp[2 * kk + 1][0], acc_dp[2 * kk + 1][1]);
        u32 a3 = pack2(acc_dp[2 * kk + 1][2], acc_dp[2 * kk + 1][3]);
        #pragma unroll
        for (int nn = 0; nn < D_PAD / 16; ++nn) {
          u32 b0, b1, b2, b3;
          ldmatrix_x4_trans(q_t + (kk * 16 * QK_PITCH + nn * 16) * 2, b0, b1, b2, b3);
          mma16816(acc_dk[2 * nn], a0, a1, a2, a3, b0, b1);
          mma16816(acc_dk[2 * nn + 1], a0, a1, a2, a3, b2, b3);
        }
      }
      __syncthreads();   // sdS complete

      // dQ[m0.., :] += dS K: warps split the FA_BM/16 row groups and 32-column chunks.
      {
        constexpr int ROW_GROUPS = FA_BM / 16;
        constexpr int CHUNKS = (D_PAD + 31) / 32;
        const int rg = warp % ROW_GROUPS;
        const int dq_row_a = m0 + rg * 16 + g;
        const int sa_key = (lane & 7) + ((lane >> 4) << 3), sa_query = ((lane >> 3) & 1) * 8;
        for (int chunk = warp / ROW_GROUPS; chunk < CHUNKS; chunk += FA_WARPS / ROW_GROUPS) {
          float acc_dq[4][4];
          #pragma unroll
          for (int i = 0; i < 4; ++i) acc_dq[i][0] = acc_dq[i][1] = acc_dq[i][2] = acc_dq[i][3] = 0.f;
          #pragma unroll
          for (int kk = 0; kk < BN / 16; ++kk) {
            u32 a0, a1, a2, a3;
            ldmatrix_x4_trans(smem_u32(sdS + (kk * 16 + sa_key) * DS_PITCH + rg * 16 + sa_query), a0, a1, a2, a3);
            #pragma unroll
            for (int nn = 0; nn < 2; ++nn) {
              if (chunk * 32 + nn * 16 < D_PAD) {
                u32 b0, b1, b2, b3;
                ldmatrix_x4_trans(k_t + (kk * 16 * QK_PITCH + chunk * 32 + nn * 16) * 2, b0, b1, b2, b3);
                mma16816(acc_dq[2 * nn], a0, a1, a2, a3, b0, b1);
                mma16816(acc_dq[2 * nn + 1], a0, a1, a2, a3, b2, b3);
              }
            }
          }
          #pragma unroll
          for (int half = 0; half < 2; ++half) {
            int row = dq_row_a + half * 8;
            if (row < sq) {
              float* dst = dq_accum + (((i64)batch * sq + row) * hq + head) * FA_D;
              #pragma unroll
              for (int i = 0; i < 4; ++i) {
                int col = chunk * 32 + i * 8 + 2 * t;
                if (col < FA_D) {
                  red_add2(dst + col, acc_dq[i][half * 2], acc_dq[i][half * 2 + 1]);
                }
              }
            }
          }
        }
      }
#endif
    }
    __syncthreads();   // done with this buffer and sdS before the next load overwrites them
  }

  // Write dK (scaled) and dV for this warp's keys.
  #pragma unroll
  for (int half = 0; half < 2; ++half) {
    int key = key_row0 + half * 8;
    if (key < sk) {
#if WANT_DK
      u16* pk = dk + batch * dk_bs + kv_head * dk_hs + (i64)key * dk_rs;
      #pragma unroll
      for (int i = 0; i < D_PAD / 8; ++i) {
        int col = i * 8 + 2 * t;
        if (col < FA_D) *(u32*)(pk + col) = pack2(acc_dk[i][half * 2] * scale, acc_dk[i][half * 2 + 1] * scale);
      }
#endif
#if WANT_DV
      u16* pv = dv + batch * dv_bs + kv_head * dv_hs + (i64)key * dv_rs;
      #pragma unroll
      for (int i = 0; i < DV_PAD / 8; ++i) {
        int col = i * 8 + 2 * t;
        if (col < FA_DV) *(u32*)(pv + col) = pack2(acc_dv[i][half * 2], acc_dv[i][half * 2 + 1]);
      }
#endif
    }
  }
}
#endif
"""#
}
