// The Hopper forward's epilogue: per consumer thread, its two rows (row_a and row_a + 8) of a
// 64 x NV accumulator in the wgmma layout, normalized by the row sums, written as the storage
// dtype, and the rows' LSE (common/softmax.cuh's finalize).
#pragma once
#include "common/softmax.cuh"
#include "hopper/ptx.cuh"

namespace fa_hopper {

// Where the output and the LSE go, and whether O's rows take 16-byte stores.
struct OutputRows {
  u16* o;
  float* lse;
  FAStrides o_strides;
  FAStatsStrides lse_strides;
  bool vec16;

  __device__ __forceinline__ static OutputRows of(const FAHopperForwardParams& params) {
    OutputRows rows;
    // Restrict-qualified locals first: restrict on a struct member is ignored.
    u16* __restrict__ o = params.o;
    float* __restrict__ lse = params.lse;
    rows.o = o;
    rows.lse = lse;
    rows.o_strides = params.o_strides;
    rows.lse_strides = params.lse_strides;
    // 16-byte output stores need 16-byte aligned rows; otherwise O goes out as 4-byte pairs.
    rows.vec16 = ((reinterpret_cast<u64>(o) & 15) |
                  ((params.o_strides.batch | params.o_strides.row | params.o_strides.head) & 7)) == 0;
    return rows;
  }
};

// Sums the rows' partial sums over the quad, writes the LSE (lane tq == 0) and O / l of the rows
// below seqlen_q, times `o_scale` (fp8: the V descale); `row_offset` is the sequence's first row
// in a packed (varlen) batch, else 0.
template <int NV, int DV>
__device__ __forceinline__ void store_output(
  const OutputRows& out, int batch, int head, const float (&o)[NV / 2], float m_a, float m_b, float l_a, float l_b,
  int row_a, int tq, int seqlen_q, int row_offset, float o_scale = 1.f) {
  const int row_b = row_a + 8;
  l_a += shfl_xor(l_a, 1);
  l_a += shfl_xor(l_a, 2);
  l_b += shfl_xor(l_b, 1);
  l_b += shfl_xor(l_b, 2);
  const float inv_a = inverse_sum(l_a) * o_scale;
  const float inv_b = inverse_sum(l_b) * o_scale;
  if (tq == 0) {
    float* lse_row = out.lse + batch * out.lse_strides.batch + head * out.lse_strides.head + row_offset;
    if (row_a < seqlen_q) lse_row[row_a] = row_lse(m_a, l_a);
    if (row_b < seqlen_q) lse_row[row_b] = row_lse(m_b, l_b);
  }
  u16* base = out.o + batch * out.o_strides.batch + head * out.o_strides.head + (i64)row_offset * out.o_strides.row;
  if (out.vec16) {
    // A quad holds 8-column chunks of its two rows as 4-byte pairs, one pair per thread; a 4x4
    // transpose over the quad gives each thread one whole chunk, stored as 16 bytes: a quarter
    // of the store instructions and whole 32-byte sectors (+8-19 % at small N, run 8).
    // This thread's chunk g * 4 + tq of each row: the lane's offset once, the chunk's as an
    // immediate (per-chunk 64-bit offsets held in registers made the three-consumer d = 64
    // kernel spill).
    uint4* out_a = reinterpret_cast<uint4*>(base + row_a * out.o_strides.row) + tq;
    uint4* out_b = reinterpret_cast<uint4*>(base + row_b * out.o_strides.row) + tq;
#pragma unroll
    for (int g = 0; g < NV / 32; ++g) {
      u32 va[4], vb[4], ra[4], rb[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int c = g * 4 + i;
        va[i] = pack2(o[c * 4 + 0] * inv_a, o[c * 4 + 1] * inv_a);
        vb[i] = pack2(o[c * 4 + 2] * inv_b, o[c * 4 + 3] * inv_b);
      }
      quad_transpose(va, ra, tq);
      quad_transpose(vb, rb, tq);
      const int chunk = g * 4 + tq;
      if (chunk * 8 < DV) {
        if (row_a < seqlen_q) out_a[g * 4] = make_uint4(ra[0], ra[1], ra[2], ra[3]);
        if (row_b < seqlen_q) out_b[g * 4] = make_uint4(rb[0], rb[1], rb[2], rb[3]);
      }
    }
  } else {
    // Column pair c * 8 + tq * 2 of each row, at 4-byte index c * 4 + tq.
    u32* out_a = reinterpret_cast<u32*>(base + row_a * out.o_strides.row) + tq;
    u32* out_b = reinterpret_cast<u32*>(base + row_b * out.o_strides.row) + tq;
#pragma unroll
    for (int c = 0; c < NV / 8; ++c) {
      if (c * 8 + tq * 2 < DV) {
        if (row_a < seqlen_q) out_a[c * 4] = pack2(o[c * 4 + 0] * inv_a, o[c * 4 + 1] * inv_a);
        if (row_b < seqlen_q) out_b[c * 4] = pack2(o[c * 4 + 2] * inv_b, o[c * 4 + 3] * inv_b);
      }
    }
  }
}

}  // namespace fa_hopper
