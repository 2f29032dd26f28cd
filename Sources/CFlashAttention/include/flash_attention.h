/*
 * flash_attention.h - the C interface of FlashAttention for Swift.
 *
 * Exact scaled dot-product attention, O = softmax(scale * Q K^T + mask) V, with the
 * FlashAttention algorithm (the N x N score matrix is never stored), forward and backward, on
 * NVIDIA GPUs (kernels compiled at run time by NVRTC) and on x86-64 CPUs (AVX2 + FMA or AVX-512).
 * Link with -lflashattention; the library carries the Swift runtime and needs only glibc, plus
 * the NVIDIA driver and NVRTC for the GPU.
 *
 * Tensors
 *   Every tensor is described by an fa_tensor: a data pointer, where the memory lives (CPU or a
 *   CUDA device ordinal), the storage dtype, the shape and the strides IN ELEMENTS (not bytes).
 *   The last stride must be 1; the other strides are free (packed QKV, transposed heads ...).
 *   Memory is never copied (except host memory given to the GPU, which never happens: the memory
 *   location of q selects the backend) and never freed by the library.
 *
 *   q    [batch, seqlen_q, heads_q,  head_dim]
 *   k    [batch, seqlen_k, heads_kv, head_dim]
 *   v    [batch, seqlen_k, heads_kv, head_dim_v]
 *   out  [batch, seqlen_q, heads_q,  head_dim_v]   same dtype as q (fp8 q: bfloat16 or float16)
 *   lse  [batch, heads_q,  seqlen_q]               float32, natural log of the softmax denominator
 *   dout, dq, dk, dv: shaped like out, q, k, v, same dtype as q
 *
 *   heads_q % heads_kv == 0 (GQA/MQA: query head h reads kv head h / (heads_q / heads_kv)).
 *   dtypes: float32 (CPU only), float16, bfloat16; accumulation is always float32.
 *   float8_e4m3fn (FA_DTYPE_FLOAT8_E4M3): q, k, v of fa_forward only, with the float32 descale
 *   factors of fa_options (FlashAttention-3's q_descale/k_descale/v_descale); out is bfloat16 or
 *   float16. On the GPU it needs sm_90a (H100) and head dims 64, 128 or 256; the CPU runs it at
 *   any size (dequantised to float32). Every other call refuses fp8 inputs.
 *
 * Semantics (those of FlashAttention-2/3)
 *   causal: key j is visible to query i iff j <= i + seqlen_k - seqlen_q (bottom-right aligned).
 *   window (left, right): visible iff i + sk - sq - left <= j <= i + sk - sq + right; a negative
 *   bound is unbounded; with causal the right bound is 0.
 *   softcap c > 0: s = c * tanh(s / c) on the scaled scores, before masking; 0 disables it.
 *   A query row that sees no key gets out = 0, lse = -inf, and dq = 0 for that row.
 *
 * Streams
 *   For CUDA tensors, `stream` is a CUstream (or cudaStream_t) of the caller: the work is queued on
 *   it and the call returns without waiting (no device synchronization), exactly like a kernel
 *   launch; scratch memory comes from a per-device pool. NULL means the library's own stream, and
 *   the call returns when the results are ready. For CPU tensors `stream` must be NULL and the call
 *   returns when the results are ready.
 *
 * Errors
 *   Every function returns FA_SUCCESS (0) or an fa_status code; fa_last_error_message() then
 *   returns a message naming the offending argument and its value, kept per thread until the next
 *   call on that thread. Bad arguments never crash the process and never write outputs.
 *
 * Thread safety
 *   Every function may be called from any thread. CPU calls from several threads run one after
 *   another on the library's worker threads (FLASH_ATTENTION_CPU_THREADS sets their number).
 */
#ifndef FLASH_ATTENTION_H
#define FLASH_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; fa_version_number() is the library's (they must match in major). */
#define FA_VERSION_MAJOR 0
#define FA_VERSION_MINOR 1
#define FA_VERSION_PATCH 0

/* Dimensions an fa_tensor can describe. */
#define FA_MAX_RANK 8

/* Return codes. */
typedef enum fa_status {
  FA_SUCCESS = 0,
  /* An argument has a value the call cannot accept; the message names it. */
  FA_ERROR_INVALID_ARGUMENT = 1,
  /* Valid, but not implemented by the backend that runs the call (a head dim, a dtype). */
  FA_ERROR_UNSUPPORTED = 2,
  /* The backend cannot run on this machine (no driver, no NVRTC, a CPU without AVX2 + FMA). */
  FA_ERROR_BACKEND_UNAVAILABLE = 3,
  /* An allocation failed. */
  FA_ERROR_OUT_OF_MEMORY = 4,
  /* A CUDA driver call failed (the message has the driver's error name). */
  FA_ERROR_CUDA = 5,
  /* A kernel failed to compile (the message has NVRTC's log). */
  FA_ERROR_COMPILATION = 6,
  /* Anything else. */
  FA_ERROR_INTERNAL = 7
} fa_status;

/* Storage types (the values of fa_tensor.dtype). INT32 is for index tensors only (cu_seqlens,
 * seqused, cache_seqlens, cache_batch_idx, page_table). */
typedef enum fa_dtype {
  FA_DTYPE_FLOAT32 = 0,
  FA_DTYPE_FLOAT16 = 1,
  FA_DTYPE_BFLOAT16 = 2,
  FA_DTYPE_INT32 = 3,
  /* float8 e4m3 without infinities (torch.float8_e4m3fn), 1 byte: fa_forward inputs only. */
  FA_DTYPE_FLOAT8_E4M3 = 4
} fa_dtype;

/* Where a tensor's memory lives (the values of fa_tensor.device_type). */
typedef enum fa_device_type {
  FA_DEVICE_CPU = 0,
  FA_DEVICE_CUDA = 1
} fa_device_type;

/* A view of caller-owned memory. */
typedef struct fa_tensor {
  /* First element; may be NULL only when the tensor has no elements. For CUDA, a device pointer. */
  void *data;
  /* An fa_device_type. */
  int32_t device_type;
  /* The CUDA device ordinal (0 for CPU tensors). */
  int32_t device_index;
  /* An fa_dtype. */
  int32_t dtype;
  /* Number of dimensions, 1 ... FA_MAX_RANK; entries past `rank` are ignored. */
  int32_t rank;
  int64_t shape[FA_MAX_RANK];
  /* In elements; the last must be 1, none negative. */
  int64_t strides[FA_MAX_RANK];
} fa_tensor;

/* What is computed beyond plain softmax attention. Start from fa_options_default() and set
 * fields: `struct_size` lets later versions add fields without breaking callers built against
 * this header. */
typedef struct fa_options {
  /* sizeof(fa_options) of the header the caller was compiled with (fa_options_default sets it). */
  uint32_t struct_size;
  /* Multiplies Q K^T; 0 means 1 / sqrt(head_dim). Must be finite and >= 0. */
  float softmax_scale;
  /* Bottom-right aligned causal mask (0 or 1). */
  int32_t causal;
  /* Sliding window bounds; negative means unbounded (FlashAttention's window_size = (-1, -1)). */
  int64_t window_left;
  int64_t window_right;
  /* Logit soft-capping c * tanh(s / c); 0 disables it. Must be finite and >= 0. */
  float softcap;
  /* Bit-reproducible backward (no floating-point atomics); 0 or 1. */
  int32_t deterministic;
  /* --- Added in version 2 (a version-1 struct_size of 40 bytes is still accepted: these fields
   * then read as their defaults). --- */
  /* ALiBi slopes, FlashAttention-2's alibi_slopes: a float32 tensor in host memory of shape
   * (heads_q) or (batch, heads_q); query head h of batch b adds -slope * |i + seqlen_k - seqlen_q - j|
   * to the scaled (soft-capped) score before the mask. NULL disables it. Read during the call only. */
  const fa_tensor *alibi_slopes;
  /* Dropout on the attention probabilities, in [0, 1); 0 disables it. Kept entries are scaled by
   * 1 / (1 - p); the lse is that of the undropped softmax. The keep mask is Philox-4x32-10 of
   * (dropout_seed, dropout_offset) and each element's (batch, head, query, key): the same on every
   * backend; pass the forward's seed and offset to the backward. */
  float dropout_p;
  uint64_t dropout_seed;
  uint64_t dropout_offset;
  /* --- Added in version 3 (a version-1 or version-2 struct_size is still accepted: these
   * fields then read as NULL). --- */
  /* fp8 inputs (fa_forward only): float32 [batch, heads_kv] factors, any strides, in q's memory;
   * the attention is computed on q * q_descale, k * k_descale, v * v_descale (query head h uses
   * kv head h / (heads_q / heads_kv)). NULL means 1; non-NULL with other dtypes is an error. */
  const fa_tensor *q_descale;
  const fa_tensor *k_descale;
  const fa_tensor *v_descale;
} fa_options;

/* Defaults: scale 1/sqrt(head_dim), no mask, no softcap, not deterministic, no ALiBi, no
 * dropout. */
fa_options fa_options_default(void);

/* Forward: writes out and lse. */
int fa_forward(const fa_tensor *q, const fa_tensor *k, const fa_tensor *v, const fa_tensor *out,
               const fa_tensor *lse, const fa_options *options, void *stream);

/* Backward: dq, dk, dv of sum(out * dout), from q, k, v, the forward's out and lse, and dout.
 * dk and dv are summed over the query heads of a GQA group. */
int fa_backward(const fa_tensor *q, const fa_tensor *k, const fa_tensor *v, const fa_tensor *out,
                const fa_tensor *lse, const fa_tensor *dout, const fa_tensor *dq, const fa_tensor *dk,
                const fa_tensor *dv, const fa_options *options, void *stream);

/* Variable-length (packed) batches, FlashAttention's flash_attn_varlen_func.
 *   q [total_q, heads_q, head_dim], k [total_k, heads_kv, head_dim], v [total_k, heads_kv, head_dim_v],
 *   out [total_q, heads_q, head_dim_v], lse float32 [heads_q, total_q].
 *   cu_seqlens_q/k: int32 [batch + 1], prefix sums of the lengths starting at 0: sequence b is rows
 *   cu_seqlens_q[b] ..< cu_seqlens_q[b + 1] of q. max_seqlen_q/k bound the lengths.
 *   seqused_q/k (may be NULL): int32 [batch], only the first seqused[b] tokens of a sequence count;
 *   the other rows get out = 0, lse = -inf and zero gradients.
 *   Causal and window masks apply per sequence, with its own lengths. Index tensors live where q
 *   lives; host index data is checked (a bad value is FA_ERROR_INVALID_ARGUMENT), device index
 *   data is trusted. */
int fa_varlen_forward(const fa_tensor *q, const fa_tensor *k, const fa_tensor *v, const fa_tensor *out,
                      const fa_tensor *lse, const fa_tensor *cu_seqlens_q, const fa_tensor *cu_seqlens_k,
                      const fa_tensor *seqused_q, const fa_tensor *seqused_k, int64_t max_seqlen_q,
                      int64_t max_seqlen_k, const fa_options *options, void *stream);

int fa_varlen_backward(const fa_tensor *q, const fa_tensor *k, const fa_tensor *v, const fa_tensor *out,
                       const fa_tensor *lse, const fa_tensor *dout, const fa_tensor *dq, const fa_tensor *dk,
                       const fa_tensor *dv, const fa_tensor *cu_seqlens_q, const fa_tensor *cu_seqlens_k,
                       const fa_tensor *seqused_q, const fa_tensor *seqused_k, int64_t max_seqlen_q,
                       int64_t max_seqlen_k, const fa_options *options, void *stream);

/* Attention against a KV cache, FlashAttention's flash_attn_with_kvcache. Forward only.
 *   q [batch, seqlen_q, heads_q, head_dim]; out [batch, seqlen_q, heads_q, head_dim_v];
 *   lse float32 [batch, heads_q, seqlen_q].
 *   k_cache/v_cache: [batch_cache, seqlen_cache, heads_kv, head_dim(_v)] (contiguous cache), or, when
 *   page_table is given, [num_pages, page_size, heads_kv, head_dim(_v)] with any page_size >= 1.
 *   cache_seqlens: int32 [batch], tokens already cached per sequence.
 *   cache_batch_idx (may be NULL): int32 [batch], the cache row of each sequence (contiguous only).
 *   page_table (may be NULL): int32 [batch, max_pages_per_sequence].
 *   k_new/v_new (may be NULL, together): [batch, seqlen_new, heads_kv, head_dim(_v)], written into
 *   the cache IN PLACE at cache_seqlens[b] before the attention, which then sees
 *   cache_seqlens[b] + seqlen_new keys. Causal and window masks align to the end of the keys.
 *   Cache slots past a sequence's keys and pages its table does not reach are never read.
 *   num_splits: key chunks per sequence computed apart and merged by LSE; 0 chooses. */
int fa_kvcache_forward(const fa_tensor *q, const fa_tensor *k_cache, const fa_tensor *v_cache,
                       const fa_tensor *k_new, const fa_tensor *v_new, const fa_tensor *cache_seqlens,
                       const fa_tensor *cache_batch_idx, const fa_tensor *page_table, const fa_tensor *out,
                       const fa_tensor *lse, int32_t num_splits, const fa_options *options, void *stream);

/* FA_SUCCESS when the backend for (device_type, device_index) can run here; otherwise its error
 * code, and fa_last_error_message() says why (for CUDA: no driver, no NVRTC, no such device). */
int fa_backend_status(int32_t device_type, int32_t device_index);

/* The message of the last failed call on this thread ("" after a success). Never NULL; valid
 * until the next call on this thread. */
const char *fa_last_error_message(void);

/* The library's version, "MAJOR.MINOR.PATCH", and as MAJOR * 10000 + MINOR * 100 + PATCH. */
const char *fa_version(void);
int32_t fa_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* FLASH_ATTENTION_H */
