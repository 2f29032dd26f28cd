// Dropout in the Hopper forward (FA_DROPOUT, a kernel key flag: kernels without it contain none
// of this). The keep mask is common/dropout.cuh's (fa_philox.h: one Philox call per 8 keys of a
// row, 16 bits a key), so the FlashAttention-2 kernels, the CPU backend and this kernel drop the
// same elements; only the distribution of the calls over the threads is this file's.
//
// The wgmma accumulator layout is the m16n8k16 one per warp: a thread holds rows a and a + 8
// and keys 8c + 2t, + 1 (t = lane % 4) of each 8-key chunk c, which are the 16-bit halves of
// word t of chunk c's call. The four lanes of a quad share their rows, so lane t makes the calls
// of chunks 4j + t only (one per row and group of four chunks) and turns each call's four words
// into its chunk's 8 keep bits at once (compile-time positions); after the last group the lanes
// trade those bits (quad_share_bits: one shuffle per lane and 32 bits, shifts and masks), not
// the words. One Philox call per row per four chunks, and the shuffles once per tile rather than
// per call. Unlike keep_bits<CHUNKS, true> this also shares the calls of tiles whose chunk count
// is not a multiple of 4 (BN = 176: 22 chunks): the last group's surplus calls (chunks past the
// tile) are made and their bits ignored.
//
// The dropped P is zeroed after the softmax has summed it (l and the LSE are the undropped
// softmax's, FA2's rule); the kept P is NOT scaled here: 1 / (1 - p) multiplies the output once
// in the epilogue (store_output's o_scale), one FMUL per row instead of one per score. The
// result equals FA2's (P * 1/(1-p)) V / l up to rounding (P is rounded to 16 bits unscaled).
#pragma once
#include "common/dropout.cuh"

namespace fa_hopper {

// The generator's (batch, head) index of a work tile (Dropout's own rule).
__device__ __forceinline__ u32 dropout_batch_head(const FADropoutParams& p, int batch, int head) {
  return Dropout(p, batch, head).batch_head;
}

// u32 for up to 4 groups of chunks (8 bits each), u64 for up to 8.
template <bool WIDE> struct KeepWord { typedef u32 type; };
template <> struct KeepWord<true> { typedef u64 type; };

// The 8 keep bits of one call's chunk: bit 2i + e is key 8 group + 2i + e (word i, half e).
// Dropout::pair_bits's rule (a 16-bit half h is kept iff h < threshold), compared in the high
// half of the word: h < threshold iff h 2^16 < threshold 2^16 (threshold < 2^16), which for the
// high half is the word itself and for the low half the word shifted left by 16, which the
// compiler folds into the call's last multiply: 5 instructions per word instead of 8.
__device__ __forceinline__ u32 chunk_keep_bits(const Dropout& d, const fa_philox_words& w) {
  const u32 bound = d.threshold << 16;
  const u32 words[4] = {w.w0, w.w1, w.w2, w.w3};
  u32 bits = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    bits |= ((words[i] << 16) < bound ? 1u : 0u) << (2 * i);
    bits |= (words[i] < bound ? 2u : 0u) << (2 * i);
  }
  return bits;
}

// Lane t of each quad gets, from every quad lane s, bits 2t and 2t + 1 of each byte j of its
// `own` (chunk 4j + s's keep bits), as bits 2 (4j + s) and 2 (4j + s) + 1.
template <class Word>
__device__ __forceinline__ Word quad_share_bits(Word own, int t) {
  const int quad = (int)(threadIdx.x & 31u) & ~3;
  const Word pairs = (Word)0x0303030303030303ull;
  Word bits = 0;
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    Word x;
    if constexpr (sizeof(Word) == 8) {
      const u32 lo = __shfl_sync(0xffffffffu, (u32)own, quad + s), hi = __shfl_sync(0xffffffffu, (u32)(own >> 32), quad + s);
      x = (Word)lo | (Word)hi << 32;
    } else {
      x = __shfl_sync(0xffffffffu, own, quad + s);
    }
    bits |= ((x >> (2 * t)) & pairs) << (2 * s);
  }
  return bits;
}

// The keep bits of rows `row_a` and `row_a` + 8 for chunks `group0` ..< `group0` + CHUNKS: bit
// 2c + e of each is key 8 (group0 + c) + 2t + e. Every lane of the warp calls this (shuffles).
// The loop over groups is not unrolled: unrolled, the calls' registers would pile up next to
// S, P and O. Both rows' calls in one iteration: two independent Philox chains to interleave.
template <int CHUNKS>
__device__ __forceinline__ void quad_keep_bits(
  const Dropout& d, int row_a, int group0, int t, u64& bits_a, u64& bits_b) {
  static_assert(CHUNKS <= 32, "64 keep bits per row");
  constexpr int GROUPS = (CHUNKS + 3) / 4;
  typedef typename KeepWord<(GROUPS > 4)>::type Word;
  Word own_a = 0, own_b = 0;  // byte j: the keep bits of chunk 4j + t
#pragma unroll 1
  for (int j = 0; j < GROUPS; ++j) {
    const u32 group = (u32)(group0 + 4 * j + t);
    const fa_philox_words wa = fa_dropout_words(d.seed, d.offset, d.batch_head, (u32)row_a, group);
    const fa_philox_words wb = fa_dropout_words(d.seed, d.offset, d.batch_head, (u32)row_a + 8u, group);
    own_a |= (Word)chunk_keep_bits(d, wa) << (8 * j);
    own_b |= (Word)chunk_keep_bits(d, wb) << (8 * j);
  }
  bits_a = quad_share_bits(own_a, t);
  bits_b = quad_share_bits(own_b, t);
}

// Zeroes the dropped entries of P (a thread's rows a and a + 8 of an N-key tile from key n0, in
// the accumulator layout: s[4c + e] row a, s[4c + 2 + e] row b, key n0 + 8c + 2t + e).
template <int N>
__device__ __forceinline__ void drop_p(
  float (&s)[N / 2], const FADropoutParams& params, u32 batch_head, int row_a, int n0, int t) {
  Dropout d(params, 0, 0);
  d.batch_head = batch_head;
  u64 keep_a, keep_b;
  quad_keep_bits<N / 8>(d, row_a, n0 >> 3, t, keep_a, keep_b);
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (!((keep_a >> (2 * c + e)) & 1)) s[c * 4 + e] = 0.f;
      if (!((keep_b >> (2 * c + e)) & 1)) s[c * 4 + 2 + e] = 0.f;
    }
  }
}

}  // namespace fa_hopper
