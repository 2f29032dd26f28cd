// Dropout's keep mask: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC 2011; the generator of cuRAND and PyTorch), the one definition that the CPU kernels (C),
// the float64 reference (Swift, through the Clang importer) and the CUDA kernels (NVRTC; the
// EmbedKernelSources plugin embeds this header) all compile, so every backend drops the same
// entries.
//
// An element's random number depends only on the call's (seed, offset) and the element's
// coordinates, never on tiles, threads or SMs. One Philox call serves eight consecutive keys of
// one query row, 16 bits each (the keep probability in steps of 2^-16):
//
//   key     = (seed_lo, seed_hi + offset_hi)
//   counter = (key_index / 8, query_index, batch * heads_q + head, offset_lo)
//   words   = philox(counter, key)
//   h       = 16-bit half (key_index % 2) of word (key_index % 8) / 2   (the low half first)
//   kept    iff h < threshold,  threshold = floor((1 - p) * 2^16)  (in 0 ... 65535 for p > 0)
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

/// The words of keys `8 * group ..< 8 * group + 8` of query row `row` of (batch, head) pair
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

/// The 16-bit number of key `8 * group + slot` (slot 0...7) in a call's words.
FA_PHILOX_FN fa_philox_u32 fa_dropout_number(fa_philox_words words, int slot) {
  return (fa_philox_word(words, slot >> 1) >> ((slot & 1) * 16)) & 0xFFFFu;
}

/// Whether the element (batch_head, row, column) is kept (`threshold` = floor((1 - p) 2^16)).
FA_PHILOX_FN int fa_dropout_keeps(
  fa_philox_u64 seed, fa_philox_u64 offset, fa_philox_u32 threshold, fa_philox_u32 batch_head, fa_philox_u32 row,
  fa_philox_u32 column) {
  return fa_dropout_number(fa_dropout_words(seed, offset, batch_head, row, column >> 3), (int)(column & 7)) < threshold;
}

#endif
