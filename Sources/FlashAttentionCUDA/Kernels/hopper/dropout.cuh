// Dropout in the Hopper kernels (FA_DROPOUT, a kernel key flag: kernels without it contain none
// of this). The keep mask is fa_philox.h's (one Philox call per 16 keys of a row, 8 bits a key),
// so the FlashAttention-2 kernels, the CPU backend and this kernel drop the same elements; only
// the distribution of the calls over the threads is this file's.
//
// The wgmma accumulator layout is the m16n8k16 one per warp: a thread holds rows a and a + 8
// and keys 8c + 2t, + 1 (t = lane % 4) of each 8-key chunk c, so of each call's sixteen keys its
// four are byte t of the call's four words. The four lanes of a quad share their rows, so lane t
// makes the calls of key groups 4j + t only (one per row and group of four calls) and turns
// each call into the quad's 16 keep flags at once (fa_dropout_lane_flags: one SWAR compare per
// word); after the last group the lanes trade the flags (quad_share_flags: two shuffles per lane
// and source lane, shifts and masks), not the words. Calls past the tile's keys (BN = 176: 11
// calls, made in groups of 4) are made and their flags ignored.
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

// Lane t gets, from every quad lane s, nibble t of each 16-bit group j of its `own` (the flags of
// call 4j + s), as bits 4 (4j + s) ... + 3: bit 2c + e is then key 8c + 2t + e of the tile.
template <class Word>
__device__ __forceinline__ u64 quad_share_flags(Word own, int t) {
  const int quad = (int)(threadIdx.x & 31u) & ~3;
  const Word nibbles = (Word)0x000F000F000F000Full;
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
    bits |= ((x >> (4 * t)) & nibbles) << (4 * s);
  }
  return (u64)bits;
}

// The keep bits of rows `row_a` and `row_a` + 8 for chunks `group0` ..< `group0` + CHUNKS
// (group0 even: tiles start at multiples of 16 keys): bit 2c + e of each is key
// 8 (group0 + c) + 2t + e. Every lane of the warp calls this (shuffles). The loop over groups is
// not unrolled: unrolled, the calls' registers would pile up next to S, P and O. Both rows'
// calls in one iteration: two independent Philox chains to interleave.
template <int CHUNKS>
__device__ __forceinline__ void quad_keep_bits(
  const Dropout& d, int row_a, int group0, int t, u64& bits_a, u64& bits_b) {
  static_assert(CHUNKS <= 32, "64 keep bits per row");
  constexpr int CALLS = (CHUNKS + 1) / 2, GROUPS = (CALLS + 3) / 4;
  typedef typename DropoutBitsWord<(GROUPS > 2)>::type Word;  // 16 flags per group of calls
  Word own_a = 0, own_b = 0;  // 16-bit group j: the flags of call 4j + t
#pragma unroll 1
  for (int j = GROUPS - 1; j >= 0; --j) {
    const u32 call = (u32)((group0 >> 1) + 4 * j + t);
    const fa_philox_words wa = fa_dropout_words(d.seed, d.offset, d.batch_head, (u32)row_a, call);
    const fa_philox_words wb = fa_dropout_words(d.seed, d.offset, d.batch_head, (u32)row_a + 8u, call);
    own_a = own_a << 16 | (Word)fa_dropout_lane_flags(wa, d.threshold);
    own_b = own_b << 16 | (Word)fa_dropout_lane_flags(wb, d.threshold);
  }
  bits_a = quad_share_flags(own_a, t);
  bits_b = quad_share_flags(own_b, t);
}

// The keep bits of one step of the backward's key/value kernel, in its transposed layout: S^T
// holds a thread's key rows key_a = 16 w + g and key_a + 8 (w its warp, g = lane / 4) against
// queries m0 + 8c + 2t + e of the step's 64 (t = lane % 4); bit 4c + 2h + e of the result is
// key key_a + 8h against query m0 + 8c + 2t + e, the element's index in the accumulator. Key
// blocks and warps start at multiples of 16 keys, so a warp's 16 keys are exactly one Philox
// call's (`key_group` = key_a / 16) and its 64 queries need 64 calls: lane (g, t) makes those of
// queries m0 + 8g + 2t + e (two, independent chains), and every lane then takes its two keys'
// flags from the eight lanes (c, t) that made its column's calls (eight shuffles). Every lane of
// the warp calls this.
__device__ __forceinline__ u32 transposed_keep_bits(const Dropout& d, int m0, int key_group, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const u32 row = (u32)(m0 + 8 * g + 2 * t);
  const fa_philox_words w0 = fa_dropout_words(d.seed, d.offset, d.batch_head, row, (u32)key_group);
  const fa_philox_words w1 = fa_dropout_words(d.seed, d.offset, d.batch_head, row + 1u, (u32)key_group);
  // Bits 0-15: query row's 16 keys (fa_dropout_lane_flags' order); bits 16-31: query row + 1's.
  const u32 own = fa_dropout_lane_flags(w0, d.threshold) | fa_dropout_lane_flags(w1, d.threshold) << 16;
  // Key slot g (key_a) is flag bit 4 (g / 2) + g % 2 of a call, slot g + 8 (key_a + 8) two above:
  // after the shift, bits 0 and 2 (query e = 0) and 16 and 18 (e = 1).
  const int shift = 4 * (g >> 1) + (g & 1);
  u32 bits = 0;
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const u32 y = __shfl_sync(0xffffffffu, own, 4 * c + t) >> shift;
    bits |= ((y & 5u) | ((y >> 15) & 10u)) << (4 * c);
  }
  return bits;
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
