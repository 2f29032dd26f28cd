// Dropout in the attention kernels (FA_DROPOUT 1, a kernel key flag: kernels without it do not
// contain this). The keep mask is fa_philox.h's, regenerated wherever P is formed, so nothing is
// stored, the backward drops exactly what the forward dropped, and the CPU backend (which
// compiles the same header) drops the same elements.
//
// In the MMA accumulator layout a thread holds keys 2t and 2t + 1 of each 8-key chunk of its
// rows; a chunk is one Philox call's group, and those two keys are the 16-bit halves of the
// call's word t. Every thread makes the calls of its own (row, chunk) pairs, so the four threads
// of a quad repeat each call: ~25 instructions per element, a correctness-first choice for the
// FlashAttention-2 kernels (sharing the calls across the quad is the known next step).
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

  // The keep bits of `CHUNKS` consecutive 8-key chunks of query `row`, from chunk `group0`:
  // bits 2c and 2c + 1 for keys 8 (group0 + c) + 2t and + 1. The Philox calls run in a loop
  // that is not unrolled: unrolled, their registers spill the kernels' big accumulators.
  template <int CHUNKS>
  __device__ __forceinline__ u64 keep_bits(int row, int group0, int t) const {
    static_assert(CHUNKS <= 32, "64 keep bits");
    u64 bits = 0;
    #pragma unroll 1
    for (int c = 0; c < CHUNKS; ++c) {
      const u32 word = fa_philox_word(fa_dropout_words(seed, offset, batch_head, (u32)row, (u32)(group0 + c)), t);
      const u32 pair = ((word & 0xFFFFu) < threshold ? 1u : 0u) | ((word >> 16) < threshold ? 2u : 0u);
      bits |= (u64)pair << (2 * c);
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
