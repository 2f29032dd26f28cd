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

// The V transpose works on 4x4-byte blocks: task (key panel q, column panel p, diagonal c), lane
// l of a warp taking the logical key word a = l and the column word e = l ^ c, which makes both
// its reads (bank e ^ 8(a & 3) per row) and its writes (bank a ^ 16(e & 1) per row) hit 32
// different banks. Its loads are rows r0, r0 + 1, r0 + 8, r0 + 9 of the raw tile (the physical
// keys of logical words 4a..4a+3), column bytes 4e; its stores rows n0..n0+3 of V^T (n0 = 128p +
// 4e), bytes 4a; every address under the 128-byte swizzle (chunk ^= row % 8). With r0 % 8 =
// 2(a % 4), e = l ^ c and 512e = 512l ^ 512c, each address is a per-lane constant XOR a
// warp-uniform term of c plus uniform offsets, so a block costs ~4 + 8 address instructions
// beside its 8 memory and 6 byte-permute ones (ncu, 2026-12-06: the per-block swizzle arithmetic
// made the three transposing warps issue 41 % of the kernel's instructions at d 128).
// Three registers: the transposing warps run at 40 (five spilled 8 bytes there).
struct TransposeLane {
  u32 lane;
  u32 load_row;      // (r0 - 128q) * 128
  u32 load_x0;       // 4l ^ the swizzle of row r0, 4l ^ (2(l % 4) << 4); row r0 + 1's is this ^ 16

  __device__ __forceinline__ explicit TransposeLane(u32 l) : lane(l) {
    const u32 r0 = 32 * (l / 8) + 16 * ((l / 4) % 2) + 2 * (l % 4);
    load_row = r0 * 128;
    load_x0 = (4 * l) ^ ((2 * (l % 4)) << 4);
  }
  // 512l: row 4e's 512e before the XOR with 512c.
  __device__ __forceinline__ u32 store_row() const { return lane << 9; }
  // 4l ^ 64(l & 1): the swizzle of row 4e + j before the terms of c and j.
  __device__ __forceinline__ u32 store_x() const { return (lane << 2) ^ ((lane & 1) << 6); }
};

template <int BN, int DVP>
struct TransposeBlock {
  static constexpr int COLUMN_PANELS = DVP / 128;
  static constexpr int TASKS = (BN / 128) * COLUMN_PANELS * 32;  // (key panel, column panel, diagonal)
  u32 c, p, q;
  u32 w0, w1, w2, w3;

  __device__ __forceinline__ explicit TransposeBlock(u32 task) {
    c = task % 32u;
    p = (task / 32u) % (u32)COLUMN_PANELS;
    q = task / 32u / (u32)COLUMN_PANELS;
  }

  __device__ __forceinline__ void load(u32 raw, const TransposeLane& lane) {
    const u32 rows = raw + p * BN * 128 + q * 128 * 128 + lane.load_row;
    const u32 x0 = lane.load_x0 ^ (4 * c);
    const u32 a0 = rows + x0, a1 = rows + (x0 ^ 16);
    w0 = ld_shared_u32(a0);
    w1 = ld_shared_u32(a1 + 128);
    w2 = ld_shared_u32(a0 + 8 * 128);
    w3 = ld_shared_u32(a1 + 9 * 128);
  }

  // 4x4 byte transpose: out j, byte i = w_i byte j.
  __device__ __forceinline__ void store(u32 vt, const TransposeLane& lane) const {
    const u32 t0 = byte_perm(w0, w1, 0x5140), t1 = byte_perm(w0, w1, 0x7362);
    const u32 t2 = byte_perm(w2, w3, 0x5140), t3 = byte_perm(w2, w3, 0x7362);
    const u32 base = vt + q * DVP * 128 + p * 128 * 128 + (lane.store_row() ^ (512 * c));
    const u32 x = lane.store_x() ^ ((c & 1) << 6);
    st_shared_u32(base + x, byte_perm(t0, t2, 0x5410));
    st_shared_u32(base + 128 + (x ^ 16), byte_perm(t0, t2, 0x7632));
    st_shared_u32(base + 256 + (x ^ 32), byte_perm(t1, t3, 0x5410));
    st_shared_u32(base + 384 + (x ^ 48), byte_perm(t1, t3, 0x7632));
  }
};

// Transposes one V stage: `raw` holds V as TMA wrote it (DVP/128 panels of BN rows x 128 bytes,
// one byte per head-dim column), `vt` receives V^T as BN/128 panels of DVP rows x 128 keys, keys
// renamed as above. The `workers` threads (a multiple of 32) split the blocks, two per iteration
// with all eight loads issued before the first store.
template <int BN, int DVP>
__device__ __forceinline__ void transpose_v_stage(u32 raw, u32 vt, int worker, int workers, const TransposeLane& lane) {
  typedef TransposeBlock<BN, DVP> Block;
  const u32 warps = (u32)workers / 32u;
#pragma unroll 1
  for (u32 task = (u32)worker / 32u; task < (u32)Block::TASKS; task += 2 * warps) {
    const u32 second = task + warps;
    Block x(task);
    x.load(raw, lane);
    if (second < (u32)Block::TASKS) {
      Block y(second);
      y.load(raw, lane);
      x.store(vt, lane);
      y.store(vt, lane);
    } else {
      x.store(vt, lane);
    }
  }
}

// The descale factor of (batch, kv head) from a float32 [batch, heads_kv] view; 1 without one.
__device__ __forceinline__ float descale_factor(const float* factors, i64 batch_stride, i64 head_stride, int batch, int kv_head) {
  return factors == nullptr ? 1.f : factors[batch * batch_stride + kv_head * head_stride];
}

}  // namespace fa_hopper
