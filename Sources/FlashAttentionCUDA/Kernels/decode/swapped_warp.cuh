// The decode warp for at most 8 packed rows (FA_SWAP; GQA groups of 4-8 with one query token,
// the common decode): the operands of both GEMMs swapped, so the keys fill the MMA's M = 16 and
// the rows its N = 8, instead of 8 rows filling (and wasting) half or more of an m16 tile.
//
//   S^T = K Q^T    A = the tile's K rows (ldmatrix, A pattern), B = Q^T from registers
//   O^T += V^T P^T A = V^T (ldmatrix.trans of V rows), B = P^T (movmatrix of S^T's fragment)
//
// Against the m16 warp (decode.cu's DecodeWarp) per 16 keys at d 128: 8 MMAs for Q K^T instead
// of 16, 8 for P V instead of 16, 4 exponentials a lane instead of 8, 32 accumulator floats of
// O instead of 64. The small decodes are latency-bound in each warp's chain of these
// (docs/perf-notes/cuda-decode.md, r27), not in DRAM.
//
// Fragments (mma.m16n8k16, g = lane / 4, t = lane % 4):
// - s[0], s[1] = S^T[key g][rows 2t, 2t + 1]; s[2], s[3] = S^T[key g + 8][same rows].
// - acc_o[i][0], [1] = O^T[dim 16 i + g][rows 2t, 2t + 1]; [2], [3] = dim 16 i + g + 8.
// So a lane holds two rows, 2t and 2t + 1, shared by the 8 lanes of equal t: a row's max and
// sum reduce over lanes xor 4, 8, 16.
//
// The softmax is the lazy one of the Hopper forward (common/softmax.cuh's RESCALE_SLACK): a
// row's max moves only when a tile's max is more than 8 (log2) above it, and O is rescaled only
// when some row of the warp moved, which after the first tiles of a split is rare. The exact
// exponent form (issue #16) subtracts the raw score whose product the kept max is.
#pragma once

struct DecodeWarpSwapped {
  float acc_o[DV_PAD / 16][4];
  float acc_s[4];
  float row_max[2], row_sum[2];  // row_sum: over this lane's keys only, reduced at the end
  float raw_max[2];              // the raw score whose product row_max is
  int token[2];                  // the query token of rows 2t, 2t + 1 (row r = token * group + head)
  int t, g;
  // Q^T as the B operand: [kk][0] = Q[row g][16 kk + 2t, +1], [kk][1] = Q[row g][16 kk + 8 + 2t, +1].
  u32 q_frag[D_PAD / 16][2];

  __device__ __forceinline__ void init(int r0, int group, int lane) {
    t = lane % 4;
    g = lane / 4;
    #pragma unroll
    for (int i = 0; i < DV_PAD / 16; ++i) acc_o[i][0] = acc_o[i][1] = acc_o[i][2] = acc_o[i][3] = 0.f;
    #pragma unroll
    for (int e = 0; e < 2; ++e) {
      row_max[e] = -FA_INF;
      raw_max[e] = -FA_INF;
      row_sum[e] = 0.f;
      token[e] = (r0 + 2 * t + e) / group;
    }
  }

  // The block's 8 packed rows of Q (zero past the last row) from shared memory.
  __device__ __forceinline__ void load_q(const u16* sQ) {
    #pragma unroll
    for (int kk = 0; kk < D_PAD / 16; ++kk) {
      q_frag[kk][0] = *reinterpret_cast<const u32*>(sQ + g * K_PITCH + kk * 16 + 2 * t);
      q_frag[kk][1] = *reinterpret_cast<const u32*>(sQ + g * K_PITCH + kk * 16 + 8 + 2 * t);
    }
  }

  // The ldmatrix lane address of K rows in stage 0 of the warp's ring: the A pattern, row
  // lane % 16, columns 8 (lane / 16) onwards.
  __device__ __forceinline__ static u32 k_lane_address(const u16* ring, int lane) {
    return smem_u32(ring + (lane % 16) * K_PITCH + (lane / 16) * 8);
  }

  // The ldmatrix.trans lane address of V rows (`v_rows`, stage 0) as V^T's A fragment: matrices
  // (keys 0-7, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 0-7), (keys 8-15, dims 8-15),
  // whose transposes are a0 (dims 0-7 × keys 0-7), a1 (dims 8-15 × keys 0-7), a2, a3.
  __device__ __forceinline__ static u32 v_lane_address(const u16* v_rows, int lane) {
    return smem_u32(v_rows + ((lane & 7) + ((lane >> 4) << 3)) * V_PITCH + ((lane >> 3) & 1) * 8);
  }

  // S^T = K Q^T over one 16-key tile whose K rows start at lane address `k_lane`. Two
  // accumulators (even and odd head-dim steps) halve the chain of dependent MMAs.
  __device__ __forceinline__ void qk(u32 k_lane) {
    float even[4] = {0.f, 0.f, 0.f, 0.f}, odd[4] = {0.f, 0.f, 0.f, 0.f};
    #pragma unroll
    for (int kk = 0; kk < D_PAD / 16; ++kk) {
      u32 a0, a1, a2, a3;
      ldmatrix_x4(k_lane + kk * 32, a0, a1, a2, a3);
      mma16816(kk % 2 == 0 ? even : odd, a0, a1, a2, a3, q_frag[kk][0], q_frag[kk][1]);
    }
    #pragma unroll
    for (int e = 0; e < 4; ++e) acc_s[e] = even[e] + odd[e];
  }

  // s = softcap * tanh(s * pre).
  __device__ __forceinline__ void apply_softcap(float softcap, float pre) {
    #pragma unroll
    for (int e = 0; e < 4; ++e) acc_s[e] = softcap * tanh_approx(acc_s[e] * pre);
  }

  // Hides the keys of the tile at n0 that a row may not see, then the online softmax: P in
  // place of S, O and the row sums rescaled. `c` is scale·log2(e) (1·log2(e) after a softcap).
  __device__ __forceinline__ void softmax(const Mask<MASK>& mask, int n0, bool masked, float c) {
    if (masked) {
      #pragma unroll
      for (int e = 0; e < 2; ++e) {
        const ColumnRange keys = mask.key_columns(token[e], n0 + g);
        if (keys.hides(0)) acc_s[e] = -FA_INF;
        if (keys.hides(8)) acc_s[2 + e] = -FA_INF;
      }
    }
    float corr[2];
    bool exact = false;
    #pragma unroll
    for (int e = 0; e < 2; ++e) {
      float tile = fmaxf(acc_s[e], acc_s[2 + e]);
      tile = fmaxf(tile, __shfl_xor_sync(0xffffffffu, tile, 4));
      tile = fmaxf(tile, __shfl_xor_sync(0xffffffffu, tile, 8));
      tile = fmaxf(tile, __shfl_xor_sync(0xffffffffu, tile, 16));
      const float next = next_max<true>(row_max[e], tile * c);
      // The max only moves to a tile's max: the raw max is that tile's (x -> fp32(x·c) is monotone).
      if (next != row_max[e]) raw_max[e] = tile;
      corr[e] = rescale_factor(row_max[e], next);
      row_max[e] = next;
      exact |= needs_exact_exponent(exponent_offset(next));
    }
    if (exact) {
      #pragma unroll
      for (int e = 0; e < 2; ++e) {
        // The raw max of a row with no visible key yet is -inf; subtracting 0 keeps its p at 0.
        const float r = raw_exponent_offset(raw_max[e]);
        acc_s[e] = ex2((acc_s[e] - r) * c);
        acc_s[2 + e] = ex2((acc_s[2 + e] - r) * c);
      }
    } else {
      #pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float base = exponent_offset(row_max[e]);
        acc_s[e] = ex2(acc_s[e] * c - base);
        acc_s[2 + e] = ex2(acc_s[2 + e] * c - base);
      }
    }
    #pragma unroll
    for (int e = 0; e < 2; ++e) row_sum[e] = row_sum[e] * corr[e] + (acc_s[e] + acc_s[2 + e]);
    // Warp-uniform, so the common case (no row moved) branches over the rescale.
    if (__any_sync(0xffffffffu, corr[0] != 1.f || corr[1] != 1.f)) {
      #pragma unroll
      for (int i = 0; i < DV_PAD / 16; ++i) {
        acc_o[i][0] *= corr[0];
        acc_o[i][1] *= corr[1];
        acc_o[i][2] *= corr[0];
        acc_o[i][3] *= corr[1];
      }
    }
  }

  // O^T += V^T P^T over the tile whose V rows start at lane address `v_lane` (v_lane_address).
  // P^T's fragment of keys 0-7 (8-15) transposed is P's B fragment b0 (b1): no shared memory.
  __device__ __forceinline__ void pv(u32 v_lane) {
    const u32 b0 = movmatrix_trans(pack2(acc_s[0], acc_s[1]));
    const u32 b1 = movmatrix_trans(pack2(acc_s[2], acc_s[3]));
    #pragma unroll
    for (int i = 0; i < DV_PAD / 16; ++i) {
      u32 a0, a1, a2, a3;
      ldmatrix_x4_trans(v_lane + i * 32, a0, a1, a2, a3);
      mma16816(acc_o[i], a0, a1, a2, a3, b0, b1);
    }
  }

  // The warp's rows for the CTA's merge: max, sum (reduced over the row's 8 lanes) and O in
  // row-major fp32 (`o` [ROWS][DV_PAD], `max`/`sum` [ROWS], this warp's slices).
  __device__ __forceinline__ void store_merge(float* o, float* max, float* sum) const {
    #pragma unroll
    for (int e = 0; e < 2; ++e) {
      float total = row_sum[e];
      total += __shfl_xor_sync(0xffffffffu, total, 4);
      total += __shfl_xor_sync(0xffffffffu, total, 8);
      total += __shfl_xor_sync(0xffffffffu, total, 16);
      if (g == 0) {
        max[2 * t + e] = row_max[e];
        sum[2 * t + e] = total;
      }
      #pragma unroll
      for (int i = 0; i < DV_PAD / 16; ++i) {
        o[(2 * t + e) * DV_PAD + i * 16 + g] = acc_o[i][e];
        o[(2 * t + e) * DV_PAD + i * 16 + g + 8] = acc_o[i][2 + e];
      }
    }
  }
};
