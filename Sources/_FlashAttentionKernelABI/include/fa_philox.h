// Dropout's keep mask: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC 2011; the generator of cuRAND and PyTorch), the one definition that the CPU kernels (C),
// the float64 reference (Swift, through the Clang importer) and the CUDA kernels (NVRTC; the
// EmbedKernelSources plugin embeds this header) all compile, so every backend drops the same
// entries.
//
// An element's random number depends only on the call's (seed, offset) and the element's
// coordinates, never on tiles, threads or SMs. One Philox call serves sixteen consecutive keys
// of one query row, 8 bits each (the keep probability in steps of 2^-8, FlashAttention-2's
// resolution; 16 bits a key cost twice the Philox calls, and the calls are most of dropout's
// cost in the GPU kernels, which are bound by instruction issue):
//
//   key     = (seed_lo, seed_hi + offset_hi)
//   counter = (key_index / 16, query_index, batch * heads_q + head, offset_lo)
//   words   = philox(counter, key)
//   slot    = key_index % 16 = 8 h + 2 i + e   (h, e in 0...1, i in 0...3)
//   number  = byte i of word 2 h + e           (byte 0 the lowest)
//   kept    iff number < threshold,  threshold = floor((1 - p) * 2^8)  (in 0 ... 255 for p > 0)
//
// The slot order follows the MMA accumulator layout, where a thread holds keys 2i, 2i + 1,
// 8 + 2i and 9 + 2i of each 16 (i = lane % 4): those four are byte i of the four words, so one
// SWAR compare per word gives the keep flags of all four lanes (fa_dropout_lane_flags).
#ifndef FA_PHILOX_H
#define FA_PHILOX_H

#ifdef __CUDACC_RTC__
typedef unsigned int fa_philox_u32;
typedef unsigned long long fa_philox_u64;
#define FA_PHILOX_FN static __device__ __forceinline__
#else
#include <stdint.h>
typedef uint32_t fa_philox_u32;
typedef uint64_t fa_philox_u64;
#ifdef __CUDACC__
#define FA_PHILOX_FN static __host__ __device__ __forceinline__
#else
#define FA_PHILOX_FN static inline __attribute__((always_inline))
#endif
#endif

/// The four 32-bit words of one Philox call.
typedef struct fa_philox_words {
  fa_philox_u32 w0, w1, w2, w3;
} fa_philox_words;

/// Philox 4x32 with 10 rounds: the round multipliers and Weyl key increments of Random123.
FA_PHILOX_FN fa_philox_words fa_philox4x32_10(
  fa_philox_u32 c0, fa_philox_u32 c1, fa_philox_u32 c2, fa_philox_u32 c3, fa_philox_u32 k0, fa_philox_u32 k1) {
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // The 32x32 -> 64-bit products' halves. NVRTC: __umulhi and a 32-bit multiply (the same
    // numbers; through a 64-bit product the compiler added a zero high word per round, 16
    // instructions per two calls in the Hopper forward's loop); elsewhere one 64-bit multiply.
#ifdef __CUDACC_RTC__
    const fa_philox_u32 hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const fa_philox_u32 hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
#else
    const fa_philox_u64 p0 = (fa_philox_u64)0xD2511F53u * c0;
    const fa_philox_u64 p1 = (fa_philox_u64)0xCD9E8D57u * c2;
    const fa_philox_u32 hi0 = (fa_philox_u32)(p0 >> 32), lo0 = (fa_philox_u32)p0;
    const fa_philox_u32 hi1 = (fa_philox_u32)(p1 >> 32), lo1 = (fa_philox_u32)p1;
#endif
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  fa_philox_words words;
  words.w0 = c0;
  words.w1 = c1;
  words.w2 = c2;
  words.w3 = c3;
  return words;
}

/// The words of keys `16 * group ..< 16 * group + 16` of query row `row` of (batch, head) pair
/// `batch_head` (`batch * heads_q + head`).
FA_PHILOX_FN fa_philox_words fa_dropout_words(
  fa_philox_u64 seed, fa_philox_u64 offset, fa_philox_u32 batch_head, fa_philox_u32 row, fa_philox_u32 group) {
  return fa_philox4x32_10(
    group, row, batch_head, (fa_philox_u32)offset, (fa_philox_u32)seed,
    (fa_philox_u32)(seed >> 32) + (fa_philox_u32)(offset >> 32));
}

/// Word `lane` (0...3) of a call.
FA_PHILOX_FN fa_philox_u32 fa_philox_word(fa_philox_words words, int lane) {
  return lane == 0 ? words.w0 : lane == 1 ? words.w1 : lane == 2 ? words.w2 : words.w3;
}

/// The 8-bit number of key `16 * group + slot` (slot 0...15) in a call's words: byte
/// `(slot / 2) % 4` of word `2 (slot / 8) + slot % 2`.
FA_PHILOX_FN fa_philox_u32 fa_dropout_number(fa_philox_words words, int slot) {
  const int word = ((slot >> 3) << 1) | (slot & 1), byte = (slot >> 1) & 3;
  return (fa_philox_word(words, word) >> (8 * byte)) & 0xFFu;
}

/// Whether the element (batch_head, row, column) is kept (`threshold` = floor((1 - p) 2^8)).
FA_PHILOX_FN int fa_dropout_keeps(
  fa_philox_u64 seed, fa_philox_u64 offset, fa_philox_u32 threshold, fa_philox_u32 batch_head, fa_philox_u32 row,
  fa_philox_u32 column) {
  return fa_dropout_number(fa_dropout_words(seed, offset, batch_head, row, column >> 4), (int)(column & 15)) < threshold;
}

/// Bit 7 of each byte of the result: whether that byte of `word` is below `threshold` (0...255),
/// for all four bytes at once (SWAR; the other bits are not meaningful). The low seven bits
/// compare without borrows between bytes: (x | 0x80) - (t & 0x7F) keeps bit 7 iff x mod 128 >=
/// t mod 128; the bytes' top bits then decide where they differ.
FA_PHILOX_FN fa_philox_u32 fa_dropout_bytes_below(fa_philox_u32 word, fa_philox_u32 threshold) {
  const fa_philox_u32 t = threshold * 0x01010101u;
  const fa_philox_u32 low = (word | 0x80808080u) - (t & 0x7F7F7F7Fu);
  return (~word & t) | (~(word ^ t) & ~low);
}

/// The keep flags of a call's sixteen keys, as the four lanes of a quad hold them: bit 4 i + b
/// is key 8 h + 2 i + e with b = 2 h + e (lane i's keys 2i, 2i + 1, 8 + 2i, 9 + 2i in that order).
FA_PHILOX_FN fa_philox_u32 fa_dropout_lane_flags(fa_philox_words words, fa_philox_u32 threshold) {
  // Bit 4 + w of byte i: byte i of word w is below the threshold.
  const fa_philox_u32 merged = (fa_dropout_bytes_below(words.w3, threshold) & 0x80808080u) |
                               ((fa_dropout_bytes_below(words.w2, threshold) >> 1) & 0x40404040u) |
                               ((fa_dropout_bytes_below(words.w1, threshold) >> 2) & 0x20202020u) |
                               ((fa_dropout_bytes_below(words.w0, threshold) >> 3) & 0x10101010u);
  // The four high nibbles, in byte order, into the low 16 bits.
  const fa_philox_u32 nibbles = (merged >> 4) & 0x0F0F0F0Fu, pairs = nibbles | (nibbles >> 4);
  return (pairs & 0xFFu) | ((pairs >> 8) & 0xFF00u);
}

#endif
