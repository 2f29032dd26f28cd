// Where a token of a KV cache lives, for the append and decode kernels: a contiguous cache
// `[batch_cache, seqlen_cache, heads_kv, dim]` holds sequence b in cache row batch_idx[b] (row b
// without an index), a paged cache `[num_pages, page_size, heads_kv, dim]` holds token t of
// sequence b in page page_table[b, t / page_size], row t % page_size (any page size >= 1).
//
// The index data is the caller's device memory, trusted as FlashAttention trusts it: a token at
// or past the sequence's length is never looked up, so page-table entries past a sequence's last
// page (and the pages they name) are never touched.
#pragma once
#include "common/types.cuh"

struct CacheIndex {
  const FACacheIndex& index;

  __device__ __forceinline__ explicit CacheIndex(const FACacheIndex& index) : index(index) {}

  // Tokens already in sequence b's cache before this call's append.
  __device__ __forceinline__ int cached_tokens(int b) const {
    const fa_i32* __restrict__ seqlens = index.seqlens;
    return seqlens[b * index.seqlens_stride];
  }

  // The cache row of sequence b in a contiguous cache.
  __device__ __forceinline__ int cache_row(int b) const {
    const fa_i32* __restrict__ rows = index.batch_idx;
    return rows == nullptr ? b : rows[b * index.batch_idx_stride];
  }

  // The block (page or cache row) and the row within it of token t of sequence b; `row` is the
  // contiguous cache row of sequence b (unused for a paged cache).
  template <bool PAGED>
  __device__ __forceinline__ void locate(int b, int row, int t, int& block, int& offset) const {
    if (PAGED) {
      const fa_i32* __restrict__ table = index.page_table;
      const int page = t / index.page_size;
      block = table[b * index.page_table_batch_stride + page * index.page_table_page_stride];
      offset = t - page * index.page_size;
    } else {
      block = row;
      offset = t;
    }
  }
};

// The element offset of (block, row, head) in a cache tensor with `strides` (batch = the block
// stride).
__device__ __forceinline__ i64 cache_offset(const FAStrides& strides, int block, int row, int head) {
  return block * strides.batch + row * strides.row + head * strides.head;
}
