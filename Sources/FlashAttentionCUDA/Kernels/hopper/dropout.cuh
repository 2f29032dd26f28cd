// Dropout in the Hopper forward (FA_DROPOUT, a kernel key flag: kernels without it contain none
// of this). The keep mask is fa_philox.h's (one Philox call per 16 keys of a row, 8 bits a key),
// so the FlashAttention-2 kernels, the CPU backend and this kernel drop the same elements; only
// the distribution of the calls over the threads is this file's and forward.cu's.
//
// The calls run in the producer warpgroup's warps 1-3 (forward.cu, keep_flags_ring): per key
// tile, every (row, call) of the block's rows, written to a shared-memory ring as the call's 16
// keep flags (fa_dropout_lane_flags: bit 4i + 2h + e is key 8h + 2i + e of the call's 16). In
// the consumers, measured on the H100 (2026-12-06), the calls' dependency chains, not their
// instruction count, held the softmax up: the SM issued on 36 % of its cycles with dropout. In
// the producer's warps they run beside the consumers' work.
//
// The wgmma accumulator layout is the m16n8k16 one per warp: a thread holds rows a and a + 8
// and keys 8c + 2t, + 1 (t = lane % 4) of each 8-key chunk c, so of call k's sixteen keys (chunks
// 2k, 2k + 1) its four are flags 4t ... 4t + 3.
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

// Zeroes the dropped entries of P (a thread's rows a and a + 8 of an N-key tile, in the
// accumulator layout: s[4c + e] row a, s[4c + 2 + e] row b, key 8c + 2t + e of the tile) from
// the rows' flags: word j holds calls 2j (low half) and 2j + 1 (high half).
template <int N, int WORDS>
__device__ __forceinline__ void drop_with_flags(float (&s)[N / 2], const u32 (&flags_a)[WORDS], const u32 (&flags_b)[WORDS], int t) {
#pragma unroll
  for (int j = 0; j < WORDS; ++j) {
    const u32 a = flags_a[j] >> (4 * t), b = flags_b[j] >> (4 * t);  // this lane's nibbles at bits 0 and 16
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = 2 * (2 * j + half) + h;  // the chunk
        if (c >= N / 8) continue;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int bit = 16 * half + 2 * h + e;
          if (!((a >> bit) & 1u)) s[c * 4 + e] = 0.f;
          if (!((b >> bit) & 1u)) s[c * 4 + 2 + e] = 0.f;
        }
      }
    }
  }
}

}  // namespace fa_hopper
