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

__device__ __forceinline__ u32 ld_shared_u32(u32 addr) {
  u32 v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

__device__ __forceinline__ void st_shared_u32(u32 addr, u32 v) {
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}

// volatile: the transpose's shared loads and stores are volatile asm (ordered against the
// mbarrier waits); a non-volatile prmt was hoisted between two blocks' loads, so the second
// block's loads waited for the first's data.
__device__ __forceinline__ u32 byte_perm(u32 a, u32 b, u32 selector) {
  u32 r;
  asm volatile("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(selector));
  return r;
}

// Byte offset of (row, byte) in a tile of 128-byte rows with the 128-byte swizzle (the 16-byte
// chunk index XOR the row % 8; the tile base is 1024-byte aligned).
__device__ __forceinline__ u32 swizzled(u32 row, u32 byte) { return row * 128 + (byte ^ ((row & 7) << 4)); }

// One 4x4-byte block of the V transpose: task (key panel q, column panel p, diagonal c), lane l
// of a warp taking the logical key word a = l and the column word e = l ^ c, which makes both
// its reads (bank e ^ 8(a & 3) per row) and its writes (bank a ^ 16(e & 1) per row) hit 32
// different banks.
template <int BN, int DVP>
struct TransposeBlock {
  static constexpr int COLUMN_PANELS = DVP / 128;
  static constexpr int TASKS = (BN / 128) * COLUMN_PANELS * 32;  // (key panel, column panel, diagonal)
  u32 q, p, a, e;
  u32 w0, w1, w2, w3;

  __device__ __forceinline__ TransposeBlock(int task, u32 lane) {
    const u32 c = task % 32;
    p = (task / 32) % COLUMN_PANELS;
    q = task / 32 / COLUMN_PANELS;
    a = lane;
    e = lane ^ c;
  }

  // Physical keys of logical words 4a..4a+3: rows r0, r0+1, r0+8, r0+9 of the raw tile.
  __device__ __forceinline__ void load(u32 raw) {
    const u32 r0 = 128 * q + 32 * (a / 8) + 16 * ((a / 4) % 2) + 2 * (a % 4);
    const u32 src = raw + p * BN * 128;
    w0 = ld_shared_u32(src + swizzled(r0, 4 * e));
    w1 = ld_shared_u32(src + swizzled(r0 + 1, 4 * e));
    w2 = ld_shared_u32(src + swizzled(r0 + 8, 4 * e));
    w3 = ld_shared_u32(src + swizzled(r0 + 9, 4 * e));
  }

  // 4x4 byte transpose: out j, byte i = w_i byte j.
  __device__ __forceinline__ void store(u32 vt) const {
    const u32 t0 = byte_perm(w0, w1, 0x5140), t1 = byte_perm(w0, w1, 0x7362);
    const u32 t2 = byte_perm(w2, w3, 0x5140), t3 = byte_perm(w2, w3, 0x7362);
    const u32 dst = vt + q * DVP * 128;
    const u32 n0 = 128 * p + 4 * e;
    st_shared_u32(dst + swizzled(n0 + 0, 4 * a), byte_perm(t0, t2, 0x5410));
    st_shared_u32(dst + swizzled(n0 + 1, 4 * a), byte_perm(t0, t2, 0x7632));
    st_shared_u32(dst + swizzled(n0 + 2, 4 * a), byte_perm(t1, t3, 0x5410));
    st_shared_u32(dst + swizzled(n0 + 3, 4 * a), byte_perm(t1, t3, 0x7632));
  }
};

// Transposes one V stage: `raw` holds V as TMA wrote it (DVP/128 panels of BN rows x 128 bytes,
// one byte per head-dim column), `vt` receives V^T as BN/128 panels of DVP rows x 128 keys, keys
// renamed as above. The `workers` threads (a multiple of 32) split the 4x4-byte blocks
// (TransposeBlock), two blocks per iteration with all eight loads issued before the first
// store: one block at a time waited a shared-memory load latency per four words.
template <int BN, int DVP>
__device__ __forceinline__ void transpose_v_stage(u32 raw, u32 vt, int worker, int workers) {
  typedef TransposeBlock<BN, DVP> Block;
  const u32 lane = worker % 32;
  const int warps = workers / 32;
#pragma unroll 1
  for (int task = worker / 32; task < Block::TASKS; task += 2 * warps) {
    const int second = task + warps;
    Block x(task, lane);
    x.load(raw);
    if (second < Block::TASKS) {
      Block y(second, lane);
      y.load(raw);
      x.store(vt);
      y.store(vt);
    } else {
      x.store(vt);
    }
  }
}

// The descale factor of (batch, kv head) from a float32 [batch, heads_kv] view; 1 without one.
__device__ __forceinline__ float descale_factor(const float* factors, i64 batch_stride, i64 head_stride, int batch, int kv_head) {
  return factors == nullptr ? 1.f : factors[batch * batch_stride + kv_head * head_stride];
}

}  // namespace fa_hopper
