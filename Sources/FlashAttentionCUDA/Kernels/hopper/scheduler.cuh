// The Hopper kernels' work schedule. The forward's: A work item is a pair of query blocks of one
// (batch, head): m = M-1-j (sub-tile 0) and m = j (sub-tile 1; absent when they coincide).
// Under a causal mask their key-tile counts add up to about M+1 whatever j is, so taking items
// round-robin balances the blocks (run 4: 2k causal on the persistent grid 384 -> 454 TFLOP/s);
// items of one head are consecutive, so the blocks resident at once share its K/V in L2. Blocks
// take items w = blockIdx.x, blockIdx.x + gridDim.x, ...: the host launches one block per item,
// or one per SM (the persistent grid), and the producer loads the next tile's Q and K/V while
// the consumers finish the current one.
#pragma once
#include "common/mask.cuh"

namespace fa_hopper {

// One work tile: BM query rows of one (batch, head), and the key blocks [n_lo, n_hi) they see.
struct WorkTile {
  int m0, head, batch, n_lo, n_hi;
  __device__ __forceinline__ int iters() const { return max(0, n_hi - n_lo); }
};

template <int BM, int BN>
struct PairedScheduler {
  int m_blocks, heads_q, num_items;

  __device__ __forceinline__ int pair_count() const { return (m_blocks + 1) / 2; }

  __device__ __forceinline__ bool has_tile(int w, int sub) const {
    const int j = w % pair_count();
    return sub == 0 || j != m_blocks - 1 - j;
  }

  template <MaskKind KIND>
  __device__ __forceinline__ WorkTile tile(int w, int sub, const Mask<KIND>& mask) const {
    WorkTile tl;
    const int bh = w / pair_count();
    const int j = w % pair_count();
    tl.m0 = (sub == 0 ? m_blocks - 1 - j : j) * BM;
    tl.head = bh % heads_q;
    tl.batch = bh / heads_q;
    const BlockRange keys = mask.template key_blocks<BM, BN>(tl.m0);
    tl.n_lo = keys.lo;
    tl.n_hi = keys.hi;
    return tl;
  }
};

// Calls body(tile) for this block's work tiles, in order; the producer and the consumers walk
// the same sequence.
template <int BM, int BN, MaskKind KIND, class Body>
__device__ __forceinline__ void for_each_tile(const PairedScheduler<BM, BN>& scheduler, const Mask<KIND>& mask, Body body) {
  for (int w = blockIdx.x; w < scheduler.num_items; w += gridDim.x)
    for (int sub = 0; sub < 2; ++sub) {
      if (!scheduler.has_tile(w, sub)) continue;
      body(scheduler.tile(w, sub, mask));
    }
}

// The Hopper backward's walk over a key block's steps: the query blocks [lo, hi) of the blocks
// that see the key block (Mask::query_blocks), for each query head of the GQA group in turn.
struct StepWalk {
  int head, m;
  __device__ __forceinline__ void next(const BlockRange& r) {
    if (++m == r.hi) {
      m = r.lo;
      ++head;
    }
  }
};

}  // namespace fa_hopper
