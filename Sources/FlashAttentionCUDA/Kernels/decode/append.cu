// The KV-cache append: the call's new keys and values `[batch, seqlen_new, heads_kv, dim]` are
// written into the cache in place at each sequence's length (token cached + t), before the
// decode kernel runs on the same stream. One thread per 16-byte chunk of one (token, head) row
// of K or V; the copy is of raw 16-bit elements, so one kernel serves fp16 and bf16.
//
// Grid: x covers seqlen_new * heads_kv * (head_dim + head_dim_v) / 8 chunks, y the batch.
#include "decode/cache.cuh"

struct alignas(16) Chunk16 {
  u32 words[4];
};

extern "C" __global__ void __launch_bounds__(256)
kv_append(const __grid_constant__ FAKVAppendParams params) {
  const int b = blockIdx.y;
  const int k_chunks = params.head_dim / 8, v_chunks = params.head_dim_v / 8;
  const int row_chunks = k_chunks + v_chunks;
  const int chunk = blockIdx.x * blockDim.x + threadIdx.x;
  if (chunk >= params.index.seqlen_new * params.heads_kv * row_chunks) return;
  const int c = chunk % row_chunks;
  const int head = (chunk / row_chunks) % params.heads_kv;
  const int t = chunk / (row_chunks * params.heads_kv);

  const CacheIndex cache(params.index);
  const int position = cache.cached_tokens(b) + t;
  int block, row;
  if (params.index.page_table != nullptr) {
    cache.locate<true>(b, 0, position, block, row);
  } else {
    cache.locate<false>(b, cache.cache_row(b), position, block, row);
  }

  const bool is_key = c < k_chunks;
  const int column = (is_key ? c : c - k_chunks) * 8;
  const FAStrides& from = is_key ? params.k_new_strides : params.v_new_strides;
  const FAStrides& to = is_key ? params.k_cache_strides : params.v_cache_strides;
  const u16* __restrict__ source = (is_key ? params.k_new : params.v_new)
    + b * from.batch + t * from.row + head * from.head + column;
  u16* __restrict__ destination = (is_key ? params.k_cache : params.v_cache) + cache_offset(to, block, row, head) + column;
  *reinterpret_cast<Chunk16*>(destination) = *reinterpret_cast<const Chunk16*>(source);
}
