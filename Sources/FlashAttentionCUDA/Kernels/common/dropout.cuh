// Dropout in the attention kernels (FA_DROPOUT 1, a kernel key flag: kernels without it do not
// contain this). The keep mask is fa_philox.h's, regenerated wherever P is formed, so nothing is
// stored, the backward drops exactly what the forward dropped, and the CPU backend (which
// compiles the same header) drops the same elements.
//
// In the MMA accumulator layout a thread holds keys 2t and 2t + 1 of each 8-key chunk of its
// rows; two chunks are one Philox call's sixteen keys, and a thread's four keys of a call are
// byte t of the call's four words (fa_philox.h's slot order), whose keep flags
// fa_dropout_lane_flags computes for the four lanes of a quad at once. The four threads of a quad
// share their rows and split the calls (keep_bits).
#pragma once
#include "common/types.cuh"
#include "fa_philox.h"

#ifndef FA_DROPOUT
#define FA_DROPOUT 0
#endif

// u32 for up to 32 keep bits, u64 for up to 64.
template <bool WIDE> struct DropoutBitsWord { typedef u32 type; };
template <> struct DropoutBitsWord<true> { typedef u64 type; };

struct Dropout {
  u64 seed, offset;
  u32 threshold, batch_head;
  float scale;  // 1 / (1 - p)

  // The generator's (batch, head) index of query head `head` of batch entry `batch`.
  __device__ __forceinline__ Dropout(const FADropoutParams& p, int batch, int head)
      : seed(p.seed), offset(p.offset), threshold((u32)p.threshold),
        batch_head((u32)p.batch_head_base + (u32)batch * (u32)p.heads_q + (u32)head), scale(p.keep_scale) {}

  // The keep bits of `CHUNKS` consecutive 8-key chunks of query `row`, from chunk `group0`:
  // bits 2c and 2c + 1 for keys 8 (group0 + c) + 2t and + 1. `t` is lane % 4, and every lane of
  // the warp calls this (it shuffles). The four lanes of a quad share their rows, so with
  // CHUNKS even and group0 even, lane t makes the Philox call of key group (group0 / 2 + 4j + t)
  // only, turns it into the quad's 16 keep flags (4 per lane), and each lane takes its nibble of
  // every quad lane's flags: one call and up to four shuffles per four calls instead of four
  // calls (with fewer than four calls per row, the lanes past them idle through one call). The
  // loop is not unrolled: unrolled, the calls' registers spill the kernels' big accumulators.
  // SHARE false: every lane makes its own calls.
  template <int CHUNKS, bool SHARE = true>
  __device__ __forceinline__ u64 keep_bits(int row, int group0, int t) const {
    static_assert(CHUNKS <= 32, "64 keep bits");
    constexpr int CALLS = CHUNKS / 2;
    u64 bits = 0;
    if constexpr (SHARE && CHUNKS % 2 == 0) {
      if ((group0 & 1) == 0) {
        // In 32 bits while they fit (one register fewer: the d = 64 key/value kernel on sm_80
        // spilled 4 bytes with 64).
        typedef typename DropoutBitsWord<(CHUNKS > 16)>::type Bits;
        const int quad = (int)(threadIdx.x & 31u) & ~3;
        Bits shared = 0;
        #pragma unroll 1
        for (int j = 0; j < (CALLS + 3) / 4; ++j) {
          const fa_philox_words w = fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)((group0 >> 1) + 4 * j + t));
          const u32 flags = fa_dropout_lane_flags(w, threshold);
          #pragma unroll
          for (int s = 0; s < (CALLS < 4 ? CALLS : 4); ++s) {
            const u32 theirs = __shfl_sync(0xffffffffu, flags, quad + s);
            shared |= (Bits)((theirs >> (4 * t)) & 0xFu) << (4 * (4 * j + s));
          }
        }
        return (u64)shared;
      }
    }
    // Call by call; a call's nibble is chunks 2 call and 2 call + 1 (keys 2t, 2t + 1 of each).
    if constexpr (CHUNKS % 2 == 0) {
      if ((group0 & 1) == 0) {
        #pragma unroll 1
        for (int k = CHUNKS / 2 - 1; k >= 0; --k) {
          const fa_philox_words w = fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)((group0 >> 1) + k));
          bits = bits << 4 | ((fa_dropout_lane_flags(w, threshold) >> (4 * t)) & 0xFu);
        }
        return bits;
      }
    }
    #pragma unroll 1
    for (int call = group0 >> 1; call <= (group0 + CHUNKS - 1) >> 1; ++call) {
      const u32 nibble = (fa_dropout_lane_flags(fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)call), threshold) >> (4 * t)) & 0xFu;
      #pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = 2 * call + h - group0;
        if (c >= 0 && c < CHUNKS) bits |= (u64)((nibble >> (2 * h)) & 3u) << (2 * c);
      }
    }
    return bits;
  }

  // The factor (0 or 1 / (1 - p)) of bit `index` of keep_bits.
  __device__ __forceinline__ float factor(u64 bits, int index) const { return (bits >> index) & 1 ? scale : 0.f; }

  // The factor of one element (the preprocess's scalar pass).
  __device__ __forceinline__ float one(int row, int key) const {
    return fa_dropout_keeps(seed, offset, threshold, batch_head, (u32)row, (u32)key) ? scale : 0.f;
  }
};
