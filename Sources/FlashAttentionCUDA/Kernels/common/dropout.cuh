// Dropout in the attention kernels (FA_DROPOUT 1, a kernel key flag: kernels without it do not
// contain this). The keep mask is fa_philox.h's, regenerated wherever P is formed, so nothing is
// stored, the backward drops exactly what the forward dropped, and the CPU backend (which
// compiles the same header) drops the same elements.
//
// In the MMA accumulator layout a thread holds keys 2t and 2t + 1 of each 8-key chunk of its
// rows; a chunk is one Philox call's group, and those two keys are the 16-bit halves of the
// call's word t. The four threads of a quad share their rows and split the calls (keep_bits).
#pragma once
#include "common/types.cuh"
#include "fa_philox.h"

#ifndef FA_DROPOUT
#define FA_DROPOUT 0
#endif

struct Dropout {
  u64 seed, offset;
  u32 threshold, batch_head;
  float scale;  // 1 / (1 - p)

  // The generator's (batch, head) index of query head `head` of batch entry `batch`.
  __device__ __forceinline__ Dropout(const FADropoutParams& p, int batch, int head)
      : seed(p.seed), offset(p.offset), threshold((u32)p.threshold),
        batch_head((u32)p.batch_head_base + (u32)batch * (u32)p.heads_q + (u32)head), scale(p.keep_scale) {}

  // The two keep bits of word `word` (keys 2t and 2t + 1 of its chunk).
  __device__ __forceinline__ u32 pair_bits(u32 word) const {
    return ((word & 0xFFFFu) < threshold ? 1u : 0u) | ((word >> 16) < threshold ? 2u : 0u);
  }

  // The keep bits of `CHUNKS` consecutive 8-key chunks of query `row`, from chunk `group0`:
  // bits 2c and 2c + 1 for keys 8 (group0 + c) + 2t and + 1. `t` is lane % 4, and every lane of
  // the warp calls this (it shuffles). The four lanes of a quad share their rows, so with CHUNKS
  // a multiple of 4 lane t makes the Philox call of chunk 4j + t only and the four calls' words
  // go round the quad: in round r lane t takes word t of chunk 4j + (t + r) % 4 from the lane
  // that made it, which offers word (its t - r) % 4. One call and four shuffles per four chunks
  // instead of four calls. The loop is not unrolled: unrolled, the calls' registers spill the
  // kernels' big accumulators.
  // SHARE false: every lane makes its own calls (the backward's key/value kernel, where the
  // shuffled form spilled its d = 64 variant by 8 bytes on sm_90a).
  template <int CHUNKS, bool SHARE = true>
  __device__ __forceinline__ u64 keep_bits(int row, int group0, int t) const {
    static_assert(CHUNKS <= 32, "64 keep bits");
    u64 bits = 0;
    if constexpr (SHARE && CHUNKS % 4 == 0) {
      const int quad = (int)(threadIdx.x & 31u) & ~3;
      #pragma unroll 1
      for (int j = 0; j < CHUNKS / 4; ++j) {
        const fa_philox_words w = fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)(group0 + 4 * j + t));
        #pragma unroll
        for (int r = 0; r < 4; ++r) {
          const u32 offered = fa_philox_word(w, (t - r) & 3);
          const u32 word = __shfl_sync(0xffffffffu, offered, quad + ((t + r) & 3));
          bits |= (u64)pair_bits(word) << (2 * (4 * j + ((t + r) & 3)));
        }
      }
    } else {
      #pragma unroll 1
      for (int c = 0; c < CHUNKS; ++c) {
        const u32 word = fa_philox_word(fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)(group0 + c)), t);
        bits |= (u64)pair_bits(word) << (2 * c);
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
