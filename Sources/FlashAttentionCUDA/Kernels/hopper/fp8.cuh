// The fp8 (e4m3) parts of the Hopper forward: P to e4m3 wgmma A fragments, the in-kernel
// transpose of V (8-bit wgmma reads B K-major only, and V arrives [keys, head_dim]), and the
// descale factors.
//
// The key permutation. A thread of the QK^T accumulator holds, per 32-key k step and per row,
// the keys 2t, 2t+1, 8+2t, 9+2t (and the same +16), t = lane % 4; the e4m3 A fragment wants
// 4 consecutive k in a register: k = 4t..4t+3 (and +16). Instead of shuffling P between lanes,
// k is renamed: logical k = 16h + 4t + j holds the physical key 16h + 8(j >> 1) + 2t + (j & 1)
// of its 32-key group. P V sums over k, so the same renaming of V's rows, done here while V is
// transposed, leaves the product unchanged: no shuffles, and P converts in place.
#pragma once
#include "hopper/ptx.cuh"

namespace fa_hopper {

// Four floats to one register of four e4m3 values (saturating), `a` in the lowest byte.
__device__ __forceinline__ u32 pack_e4m3x4(float a, float b, float c, float d) {
  u32 r;
  asm("{\n.reg .b16 lo, hi;\n"
      "cvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\n"
      "cvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;\n"
      "mov.b32 %0, {lo, hi};\n}\n"
      : "=r"(r) : "f"(a), "f"(b), "f"(c), "f"(d));
  return r;
}

// Byte i of the result is byte selector[4i..4i+3] of the pair (a: bytes 0-3, b: 4-7).
__device__ __forceinline__ u32 byte_perm(u32 a, u32 b, u32 selector) {
  u32 r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(selector));
  return r;
}

// The V transpose moves 16-key x 32-column units, one ldmatrix/stmatrix pair each: ldmatrix .trans
// (16-bit elements) reads the unit's four 8x8 matrices (keys 0-7 and 8-15 of column bytes 0-15,
// then of bytes 16-31), which gives lane l (g = l / 4, t = l % 4) the keys 2t, 2t+1 (and 8+2t,
// 9+2t from the second matrix) of the columns 2g and 2g+1. Two byte permutes per matrix pair make
// of them one register per column holding the keys 2t, 2t+1, 8+2t, 9+2t: exactly the renamed
// order above at bytes 4t..4t+3 of that column's V^T row. stmatrix (not transposed) then writes
// row g of each of its four matrices from the lanes' registers, the row address per lane: V^T row
// 2g + parity. Lanes g >= 4 swap the even and odd columns between the two matrices (a per-lane
// permute selector), so each stmatrix matrix holds rows of all eight residues mod 8 (0, 2, 4, 6,
// 9, 11, 13, 15 or 1, 3, 5, 7, 8, 10, 12, 14): its eight 16-byte writes hit eight different
// bank groups under the 128-byte swizzle, as the ldmatrix reads do (eight consecutive keys).
// Both addresses are a per-lane constant XOR a warp-uniform term plus uniform offsets (the
// 32-column pair within a 128-byte row on the load side, the 16-key group on the store side).
// ~6.5 SASS instructions per 512 bytes (d 128: LDSM, 4 PRMT, STSM and about half a LOP3), against
// ~45 for the 4x4-byte block transpose this replaced
// (ncu, 2026-12-06: the three transposing warps issued 41 % of the kernel's instructions at
// d 128 before that one).
struct TransposeLane {
  u32 load;   // raw tile offset of this lane's ldmatrix row: key 8(m & 1) + r, chunk m / 2 ^ r
  u32 store;  // V^T offset of this lane's stmatrix row n (of 32), swizzled for 16-key group 0
  u32 select_even_first;  // byte-permute selector of stmatrix matrices 0 and 2 (1 and 3: ^ 0x1111)

  __device__ __forceinline__ explicit TransposeLane(u32 l) {
    const u32 m = l / 8, r = l % 8;  // the ldmatrix/stmatrix matrix this lane addresses, its row
    load = (8 * (m & 1) + r) * 128 + 16 * ((m >> 1) ^ r);
    const u32 n = 16 * (m >> 1) + 2 * r + ((m & 1) ^ (r >> 2));
    store = n * 128 + 16 * (n % 8);
    select_even_first = (l / 4) < 4 ? 0x6420u : 0x7531u;
  }
};

// One warp's units of a stage, per 128-column panel of V: FIRST, FIRST + STRIDE, ... of the
// panel's 4 x BN/16 units, unit u the 16-key group K = u % (BN / 16) of the 32-column chunk
// C = u / (BN / 16). Unrolled within a panel, so every offset is an immediate: raw V's rows 16K..
// with the chunk pair C by XOR; V^T's key panel K / 8 (DVP rows x 128 keys), rows 32C.., the
// 16-key group K % 8 by XOR. The XOR terms touch address bits 4-6 only, and both rings are
// 1024-byte aligned, so they apply to the stage's lane address (a sum) as they would to the offset
// within the row. The panels (two at d 256) stay a loop: unrolling both spilled the masked d 256
// variants' producer (40 registers).
template <int BN, int DVP, int FIRST, int STRIDE>
__device__ __forceinline__ void transpose_units(u32 raw, u32 vt, const TransposeLane& lane) {
  constexpr int KEY_GROUPS = BN / 16, UNITS = KEY_GROUPS * 4;
  const u32 even_first = lane.select_even_first, odd_first = even_first ^ 0x1111u;
#pragma unroll 1
  for (int panel = 0; panel < DVP / 128; ++panel) {
    const u32 load = raw + panel * (BN * 128) + lane.load, store = vt + panel * (128 * 128) + lane.store;
#pragma unroll
    for (int unit = FIRST; unit < UNITS; unit += STRIDE) {
      const int key_group = unit % KEY_GROUPS, columns = unit / KEY_GROUPS;
      u32 r0, r1, r2, r3;
      ldmatrix_x4_trans((load ^ (u32)(columns * 32)) + (u32)(key_group * 2048), r0, r1, r2, r3);
      stmatrix_x4((store ^ (u32)((key_group % 8) * 16)) + (u32)((key_group / 8) * DVP * 128 + columns * 4096),
                  byte_perm(r0, r1, even_first), byte_perm(r0, r1, odd_first), byte_perm(r2, r3, even_first),
                  byte_perm(r2, r3, odd_first));
    }
  }
}

// Transposes one V stage: `raw` holds V as TMA wrote it (DVP/128 panels of BN rows x 128 bytes,
// one byte per head-dim column), `vt` receives V^T as BN/128 panels of DVP rows x 128 keys, keys
// renamed as above. Warp w of the WARPS transposing warps takes the units w, w + WARPS, ...
template <int BN, int DVP, int WARPS, int W = 0>
__device__ __forceinline__ void transpose_v_stage(u32 raw, u32 vt, int warp, const TransposeLane& lane) {
  if constexpr (W < WARPS) {
    if (warp == W) {
      transpose_units<BN, DVP, W, WARPS>(raw, vt, lane);
    } else {
      transpose_v_stage<BN, DVP, WARPS, W + 1>(raw, vt, warp, lane);
    }
  }
}

// 2^x on the FMA pipe, for part of the fp8 softmax's exponentials (FlashAttention-4's split): at
// d = 128 the MUFU's 16 exponentials a cycle per SM take as long as the fp8 GEMMs and never run
// beside them (ncu, docs/perf-notes/cuda-hopper.md "r12"), so moving some of them to the FMA pipe
// shortens the softmax. x is clamped at -127 with NaN kept (max.NaN), so -inf (a hidden key) gives
// 0 and NaN gives NaN; x + 1.5·2^23 rounds it to j in its low mantissa bits; 2^(x - j), x - j in
// [-0.5, 0.5], is a degree-4 polynomial (relative error 2.7e-6 in fp32, against e4m3's 6 % of P);
// 2^j is built in the exponent bits by one integer multiply-add (the 0x4B4·2^20 part of t's bits
// shifts out) and applied by a multiply, which keeps a NaN a NaN.
__device__ __forceinline__ float exp2_on_fma(float x) {
  float clamped;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(clamped) : "f"(x), "f"(-127.f));
  const float magic = 12582912.f;  // 1.5 * 2^23
  const float t = __fadd_rn(clamped, magic);
  const float f = __fsub_rn(clamped, __fsub_rn(t, magic));
  float p = fmaf(f, 0.009570102f, 0.05591786f);
  p = fmaf(p, f, 0.24024744f);
  p = fmaf(p, f, 0.69312179f);
  p = fmaf(p, f, 0.99999928f);
  const float two_j = __int_as_float(__float_as_int(t) * (1 << 23) + 0x3F800000);
  return p * two_j;
}

// The descale factor of (batch, kv head) from a float32 [batch, heads_kv] view; 1 without one.
__device__ __forceinline__ float descale_factor(const float* factors, i64 batch_stride, i64 head_stride, int batch, int kv_head) {
  return factors == nullptr ? 1.f : factors[batch * batch_stride + kv_head * head_stride];
}

}  // namespace fa_hopper
