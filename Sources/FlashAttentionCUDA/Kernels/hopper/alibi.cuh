// ALiBi in the Hopper kernels (FA_ALIBI; kernels without it contain none of this): the bias
// -slope * |query + seqlen_k - seqlen_q - key| of common/alibi.cuh, in the log2 units of the
// softmax, split so that what varies along a row costs one FFMA per score.
//
// A thread holds two rows (a, and b = a + 8) of an accumulator tile against columns
// first + k, k = 8 c + e (e = 0, 1). With d = query + offset - key, the distance of a pair, on
// a warp's tile whose visible pairs all lie on one side of the diagonal (`side` +1: d >= 0,
// -1: d <= 0) the bias is -side * slope * d: linear, so it splits into a part that varies along
// the row (a compile-time column times the slope: one FFMA with an immediate) and a per-row
// remainder that the kernels fold into terms they already add per row (the row max and the
// exponent's offset, or the LSE). Only a tile that the diagonal crosses pays the absolute value
// (one FADD and one FFMA with |.| per score). Under a causal mask every visible pair has d >= 0,
// so side is +1 everywhere: hidden pairs are -inf (forward) or selected to 0 (backward)
// whatever their bias.
#pragma once
#include "common/mask.cuh"
#include "common/math.cuh"

#ifndef FA_ALIBI
#define FA_ALIBI 0
#endif
#ifndef FA_ALIBI_MMA
#define FA_ALIBI_MMA 0
#endif

namespace fa_hopper {

// The slope of (batch, query head) times log2(e): the bias per unit of distance in log2 units.
__device__ __forceinline__ float alibi_slope_log2(const float* slopes, long long batch_stride, int batch, int head) {
  return slopes[batch * batch_stride + head] * FA_LOG2E;
}

// Which side of the diagonal the pairs of rows [row0, row0 + rows) x keys [key0, key0 + keys)
// lie on: +1 when every d = row + offset - key >= 0, -1 when every d <= 0, 0 when the diagonal
// crosses the tile. Causal: +1 (the keys past the diagonal are hidden).
template <MaskKind KIND>
__device__ __forceinline__ int alibi_side(int row0, int rows, int key0, int keys, int offset) {
  if (KIND == MaskKind::causal) return 1;
  if (key0 + keys - 1 <= row0 + offset) return 1;
  if (key0 >= row0 + rows - 1 + offset) return -1;
  return 0;
}

// Adds the bias to a row-major accumulator (rows a and a + 8 of a thread, N columns; `slope` in
// the accumulator's units) except for its per-row remainder, returned as (row a, row b): the
// caller adds it to each row's max and exponent offset. `d_a` = row_a + offset - first, the
// distance of the thread's first element of row a.
template <int N>
__device__ __forceinline__ float2 add_alibi_rows(float (&s)[N / 2], float slope, int side, int d_a) {
  if (side != 0) {
    // -side slope (d - k) = side slope k - side slope d.
    const float signed_slope = side > 0 ? slope : -slope;
#pragma unroll
    for (int c = 0; c < N / 8; ++c) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float k = (float)(c * 8 + e);
        s[c * 4 + e] = fmaf(signed_slope, k, s[c * 4 + e]);
        s[c * 4 + 2 + e] = fmaf(signed_slope, k, s[c * 4 + 2 + e]);
      }
    }
    return make_float2(-signed_slope * (float)d_a, -signed_slope * (float)(d_a + 8));
  }
  const float da = (float)d_a, db = (float)(d_a + 8);
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float k = (float)(c * 8 + e);
      s[c * 4 + e] = fmaf(-slope, fabsf(da - k), s[c * 4 + e]);
      s[c * 4 + 2 + e] = fmaf(-slope, fabsf(db - k), s[c * 4 + 2 + e]);
    }
  }
  return make_float2(0.f, 0.f);
}

// FA_ALIBI_MMA: the column part of the bias on the tensor cores instead of one FFMA per score
// (r27: that FFMA is ALiBi's whole cost, 11-22 % of the d 128 forward, because the softmax, not
// the tensor pipe, sets its pace). After Q K^T's k-steps one more wgmma (m64 x BN x k16, A from
// registers) adds signed_slope · column: A holds each warp's signed slope split into three parts
// of the storage type (k columns 0-2; products with small integers are exact, so the sum is the
// fp32 product to ~24 bits), B holds each key's column within the tile (0 ... BN-1, exact in
// bf16 and fp16). A warp whose tile the diagonal crosses (side 0) gets A = 0 and keeps the
// per-score |.| form; so does every warp when the slope does not fit the 16-bit type (fp16 past
// ALIBI_MMA_MAX_SLOPE).
//
// B's panel in shared memory, N-major (the register-A wgmma of hopper/wgmma.cuh reads B
// transposed, as P V needs) and without swizzle: core matrices of 8 k-rows x 8 keys (16 bytes a
// row), every row of core matrix g holding keys 8g ... 8g + 7's columns within the tile, core
// matrix g at byte 128 g, and the descriptor's leading and stride byte offsets both 128. So
// k-half 0 of key group g reads core matrix g whichever offset the hardware takes for which
// dimension, and k-half 1 (A's zero columns 8-15) reads g + 1: one group past the tile is filled
// too, so those reads see finite numbers.
constexpr float ALIBI_MMA_MAX_SLOPE = 16384.f;

template <int BN>
__device__ __forceinline__ constexpr int alibi_panel_bytes() { return (BN / 8 + 1) * 128; }

// Fills the panel (all threads of the block, before the barrier that precedes any wgmma).
template <int BN>
__device__ __forceinline__ void fill_alibi_panel(u32 panel, int tid, int threads) {
  for (int w = tid; w < alibi_panel_bytes<BN>() / 4; w += threads) {
    const int byte = 4 * w, key = byte / 128 * 8 + byte % 16 / 2;
    const u32 value = pack2((float)key, (float)(key + 1));
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(panel + byte), "r"(value) : "memory");
  }
}

// The panel's descriptor (no swizzle: layout type 0).
__device__ __forceinline__ u64 alibi_panel_desc(u32 panel) {
  return (u64)((panel & 0x3FFFF) >> 4) | ((u64)(128 >> 4) << 16) | ((u64)(128 >> 4) << 32);
}

// Which side the tensor cores serve for this warp's tile: `side` where the slope fits the 16-bit
// type, else 0 (the per-score form computes the whole bias).
__device__ __forceinline__ int alibi_mma_side(int side, float slope) {
  return fabsf(slope) <= ALIBI_MMA_MAX_SLOPE ? side : 0;
}

// The A fragment of the bias's k-step (m64 x k16, this warp's 16 rows; lane t = lane % 4 holds k
// columns 2t, 2t + 1 in registers 0 (row g) and 1 (row g + 8), 2t + 8, 2t + 9 in 2 and 3):
// side · slope in three parts at k 0, 1, 2 (the column part of -side · slope · (d_row - column)),
// zero elsewhere and for side 0.
// x as hi + mid + lo, each a value of the storage type (the rest below lo's rounding is lost:
// ~24 bits kept, fp32's precision).
__device__ __forceinline__ void split3(float x, float (&part)[3]) {
  float unused;
  unpack2(pack2(x, 0.f), part[0], unused);
  const float r1 = x - part[0];
  unpack2(pack2(r1, 0.f), part[1], unused);
  part[2] = r1 - part[1];
}

__device__ __forceinline__ void alibi_mma_fragment(u32 (&a)[4], float slope, int side, int tq) {
  float part[3];
  split3(side > 0 ? slope : side < 0 ? -slope : 0.f, part);
  const u32 k01 = pack2(part[0], part[1]), k23 = pack2(part[2], 0.f);
  a[0] = tq == 0 ? k01 : tq == 1 ? k23 : 0u;
  a[1] = a[0];
  a[2] = 0u;
  a[3] = 0u;
}

// The per-row remainder for a tile whose column part came from the tensor cores (columns counted
// from the tile's first key): -side · slope · d for rows a and a + 8, d_a = row_a + offset - n0.
__device__ __forceinline__ float2 alibi_mma_rest(float slope, int side, int d_a) {
  const float signed_slope = side > 0 ? slope : -slope;
  return make_float2(-signed_slope * (float)d_a, -signed_slope * (float)(d_a + 8));
}

// The backward's S^T = K Q^T (hopper/backward.cu) has the keys as rows and a step's BM queries as
// columns, and per key row a remainder it cannot fold into a per-row term the way the forward's
// softmax does (P^T = exp2(S^T scale - LSE2) subtracts a per-query term already): so its k-step
// adds both parts. With s = -side · slope, the bias of key r and query m0 + c is
// s · c + s · (m0 + offset - r): A holds s in three parts at k 0-2 and s · (m0 + offset - r) in
// three parts at k 3-5; B (N-major, BM/8 + 1 core matrices as above) holds c at k-rows 0-2, 1 at
// 3-5 and 0 at 6-7. bf16 only (fp16's range does not hold the remainder at long distances).
template <int BM>
__device__ __forceinline__ constexpr int alibi_bwd_panel_bytes() { return (BM / 8 + 1) * 128; }

template <int BM>
__device__ __forceinline__ void fill_alibi_bwd_panel(u32 panel, int tid, int threads) {
  for (int w = tid; w < alibi_bwd_panel_bytes<BM>() / 4; w += threads) {
    const int byte = 4 * w, krow = byte % 128 / 16, column = byte / 128 * 8 + byte % 16 / 2;
    const u32 value = krow < 3 ? pack2((float)column, (float)(column + 1)) : krow < 6 ? pack2(1.f, 1.f) : 0u;
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(panel + byte), "r"(value) : "memory");
  }
}

// The backward's A fragment: this thread's key rows a and b = a + 8 (their remainders `rest_a`,
// `rest_b` = s · (m0 + offset - key)), lane t holding k 2t, 2t + 1.
__device__ __forceinline__ void alibi_bwd_fragment(u32 (&a)[4], float s, float rest_a, float rest_b, int tq) {
  float slope_part[3], a_part[3], b_part[3];
  split3(s, slope_part);
  split3(rest_a, a_part);
  split3(rest_b, b_part);
  // k: 0-2 the slope, 3-5 the remainder; lane t takes (2t, 2t + 1).
  const float ka[6] = {slope_part[0], slope_part[1], slope_part[2], a_part[0], a_part[1], a_part[2]};
  const float kb[6] = {slope_part[0], slope_part[1], slope_part[2], b_part[0], b_part[1], b_part[2]};
  a[0] = tq == 0 ? pack2(ka[0], ka[1]) : tq == 1 ? pack2(ka[2], ka[3]) : tq == 2 ? pack2(ka[4], ka[5]) : 0u;
  a[1] = tq == 0 ? pack2(kb[0], kb[1]) : tq == 1 ? pack2(kb[2], kb[3]) : tq == 2 ? pack2(kb[4], kb[5]) : 0u;
  a[2] = 0u;
  a[3] = 0u;
}

}  // namespace fa_hopper
