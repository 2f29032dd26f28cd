// The parameters of every CUDA kernel of FlashAttentionCUDA: one struct per kernel, declared
// once here and read by both sides of the launch. Swift imports this header through the Clang
// importer (the `_FlashAttentionKernelABI` module) and fills a struct; NVRTC compiles it into the
// kernels (the EmbedKernelSources plugin embeds it beside them), which take that struct as one
// `const __grid_constant__` parameter. The static asserts at the end pin every field's offset
// and every struct's size on both compilers; `KernelABILayoutTests` checks what Swift imported.
//
// Conventions: element strides (not bytes) of `[batch, seqlen, heads, dim]` tensors with a unit
// last stride; LSE-like row statistics `[batch, heads, seqlen]`; a window bound of -1 is
// unbounded. Device pointers are plain pointers here; kernels bind them to `__restrict__` locals
// (restrict on a struct member is ignored, and the read-only loads need it).
#ifndef FLASH_ATTENTION_KERNEL_ABI_H
#define FLASH_ATTENTION_KERNEL_ABI_H

#ifdef __CUDACC_RTC__
// NVRTC has no C library headers.
typedef long long fa_i64;
typedef unsigned long long fa_u64;
typedef int fa_i32;
typedef unsigned short fa_u16;
#define FA_ABI_ASSERT(condition, message) static_assert(condition, message)
#else
#include <stdint.h>
typedef int64_t fa_i64;
typedef uint64_t fa_u64;
typedef int32_t fa_i32;
typedef uint16_t fa_u16;
#ifdef __cplusplus
#define FA_ABI_ASSERT(condition, message) static_assert(condition, message)
#else
#define FA_ABI_ASSERT(condition, message) _Static_assert(condition, message)
#endif
#endif

#ifdef __CUDACC_RTC__
// NVRTC has neither `offsetof` nor `__builtin_offsetof`; its front end's constant-folding
// address builtin gives the same number.
#define FA_ABI_OFFSET(type, field) __INTADDR__(&(((type*)0)->field))
#else
#define FA_ABI_OFFSET(type, field) __builtin_offsetof(type, field)
#endif

/// Element strides of a `[batch, seqlen, heads, dim]` tensor (the last stride is 1).
typedef struct FAStrides {
  fa_i64 batch;
  fa_i64 row;
  fa_i64 head;
} FAStrides;

/// Element strides of row statistics (LSE) `[batch, heads, seqlen]` (the last stride is 1).
typedef struct FAStatsStrides {
  fa_i64 batch;
  fa_i64 head;
} FAStatsStrides;

/// A TMA descriptor (`CUtensorMap`), written by `cuTensorMapEncodeTiled` in place. The device
/// needs it 64-byte aligned; Swift cannot import a type aligned beyond 16 bytes, so the host sees
/// it without the attribute, and the structs that hold it keep every map at a multiple of 64
/// bytes and end in explicit padding, so both sides agree on every offset and on the size.
#ifdef __CUDACC_RTC__
#define FA_TENSOR_MAP_ALIGNMENT __attribute__((aligned(64)))
#else
#define FA_TENSOR_MAP_ALIGNMENT
#endif
typedef struct FA_TENSOR_MAP_ALIGNMENT FATensorMap {
  fa_u64 words[16];
} FATensorMap;

/// Dropout on P (kernels compiled with FA_DROPOUT; all zero otherwise): the keep mask of
/// fa_philox.h for the call's seed and offset. Element (row, key) of query head h of batch entry
/// b uses the generator's (batch, head) index `batch_head_base + b * heads_q + h`, so a call on
/// a slice of a batch (`AttentionDropout.firstBatch`) drops what the whole batch would.
typedef struct FADropoutParams {
  fa_u64 seed;
  fa_u64 offset;
  /// Kept iff the element's 8-bit number is below this: floor((1 - p) 2^8) (fa_philox.h).
  fa_i32 threshold;
  /// 1 / (1 - p); 0 without dropout.
  float keep_scale;
  fa_i32 batch_head_base;
  fa_i32 heads_q;
} FADropoutParams;

// -------------------------------------------------------------------------------------------
// FlashAttention-2 kernels (sm80 and later): sm80/forward.cu, sm80/backward.cu
// -------------------------------------------------------------------------------------------

/// `flash_forward`: O and LSE for one (query block, head, batch) per CTA.
typedef struct FAForwardParams {
  const fa_u16* q;
  const fa_u16* k;
  const fa_u16* v;
  fa_u16* o;
  float* lse;
  FAStrides q_strides;
  FAStrides k_strides;
  FAStrides v_strides;
  FAStrides o_strides;
  FAStatsStrides lse_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  /// Query heads per kv head (GQA).
  fa_i32 group;
  float scale;
  /// 0: no softcap.
  float softcap;
  fa_i32 window_left;
  fa_i32 window_right;
  /// ALiBi (kernels compiled with FA_ALIBI): float32 slopes, query head h of batch b at
  /// `alibi_slopes[b * alibi_batch_stride + h]` (stride 0 for one slope per head).
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  /// Packed variable-length batches (kernels compiled with FA_VARLEN; null otherwise): int32
  /// prefix sums `(batch + 1)` of the sequences' rows, and optional used counts `(batch)`.
  /// Sequence b is rows cu_seqlens[b] ..< cu_seqlens[b + 1] of the packed `(total, heads, dim)`
  /// tensors, whose batch strides are 0.
  const fa_i32* cu_seqlens_q;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_q;
  const fa_i32* seqused_k;
  FADropoutParams dropout;
} FAForwardParams;

/// `flash_backward_preprocess`: D = rowsum(dO * O) and the LSE in log2 units, per query row.
typedef struct FABackwardPreprocessParams {
  const fa_u16* o;
  const fa_u16* dout;
  const float* lse;
  /// `[batch, heads_q, seqlen_q]`, contiguous.
  float* lse2;
  float* delta;
  FAStrides o_strides;
  FAStrides dout_strides;
  FAStatsStrides lse_strides;
  fa_i32 seqlen_q;
  fa_i32 heads_q;
  /// As in FAForwardParams (FA_VARLEN); seqlen_q is then the maximum length.
  const fa_i32* cu_seqlens_q;
  const fa_i32* seqused_q;
  /// The problem, as in FABackwardKeyValueParams, for the rows whose D comes from their scores
  /// rather than from O (|LSE| past the kernel's threshold: see flash_backward_preprocess).
  const fa_u16* q;
  const fa_u16* k;
  const fa_u16* v;
  FAStrides q_strides;
  FAStrides k_strides;
  FAStrides v_strides;
  fa_i32 seqlen_k;
  fa_i32 group;
  float scale;
  float softcap;
  fa_i32 window_left;
  fa_i32 window_right;
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_k;
  FADropoutParams dropout;
  /// FA_VARLEN with packed scratch (> 0: the packed tensors' total rows): LSE2 and D laid out
  /// `[heads_q, packed_rows]` at each sequence's own rows, one block row per 4 packed rows
  /// (no sequence lookup); 0: `[batch, heads_q, seqlen_q]`.
  fa_i32 packed_rows;
  /// The number of sequences (with packed scratch: the exact-D path finds a row's sequence in
  /// cu_seqlens_q by bisection).
  fa_i32 sequences;
} FABackwardPreprocessParams;

/// `flash_backward_kv`: dK and dV of one key block, dQ added into an fp32 accumulator.
typedef struct FABackwardKeyValueParams {
  const fa_u16* q;
  const fa_u16* k;
  const fa_u16* v;
  const fa_u16* dout;
  const float* lse2;
  const float* delta;
  float* dq_accum;
  fa_u16* dk;
  fa_u16* dv;
  FAStrides q_strides;
  FAStrides k_strides;
  FAStrides v_strides;
  FAStrides dout_strides;
  FAStrides dk_strides;
  FAStrides dv_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 group;
  float scale;
  float softcap;
  fa_i32 window_left;
  fa_i32 window_right;
  /// The first key block of this launch (the deterministic mode launches one at a time).
  fa_i32 key_block_base;
  /// ALiBi, as in `FAForwardParams`.
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  /// As in FAForwardParams (FA_VARLEN); seqlen_q/k are then the maximum lengths (the scratch's
  /// rows per (batch, head)).
  const fa_i32* cu_seqlens_q;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_q;
  const fa_i32* seqused_k;
  FADropoutParams dropout;
} FABackwardKeyValueParams;

/// `flash_backward_convert_dq`: dQ = scale * accumulator, in the storage dtype.
typedef struct FABackwardConvertParams {
  const float* dq_accum;
  fa_u16* dq;
  FAStrides dq_strides;
  fa_i32 seqlen_q;
  fa_i32 heads_q;
  float scale;
  /// As in FAForwardParams (FA_VARLEN); seqlen_q is then the maximum length.
  const fa_i32* cu_seqlens_q;
  const fa_i32* seqused_q;
  /// FA_VARLEN with packed scratch (> 0): the accumulator is `[packed_rows, heads_q, head_dim]`
  /// like dQ itself (every packed row converted; rows of no sequence hold 0); 0: per sequence.
  fa_i32 packed_rows;
  fa_i32 packed_padding;
} FABackwardConvertParams;

// -------------------------------------------------------------------------------------------
// Hopper kernels (sm_90a): hopper/forward.cu, hopper/backward.cu, hopper/backward_dq.cu
// -------------------------------------------------------------------------------------------

/// `flash_fwd_hopper`: work items (pairs of query blocks) taken round-robin by the blocks.
typedef struct FAHopperForwardParams {
  FATensorMap tm_q;
  FATensorMap tm_k;
  FATensorMap tm_v;
  fa_u16* o;
  float* lse;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 heads_q;
  fa_i32 group;
  /// Query blocks per (batch, head), and work items in all.
  fa_i32 m_blocks;
  fa_i32 num_items;
  FAStrides o_strides;
  FAStatsStrides lse_strides;
  /// scale * log2(e).
  float scale_log2;
  /// scale / softcap (0 without softcap).
  float softcap_over;
  /// softcap * log2(e).
  float softcap_log2;
  fa_i32 window_left;
  fa_i32 window_right;
  /// Keeps the descale pointers 8-byte aligned.
  fa_i32 alignment_padding;
  /// fp8 inputs: float32 `[batch, heads_kv]` descale factors of Q, K and V (null: 1).
  const float* q_descale;
  const float* k_descale;
  const float* v_descale;
  /// Their element strides: q (batch, head), k (batch, head), v (batch, head).
  fa_i64 descale_strides[6];
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  /// Packed variable-length batches (FA_VARLEN; null otherwise), as in FAForwardParams: the
  /// maps then describe the packed tensors as one batch entry of total rows, seqlen_q/k are the
  /// maximum lengths and m_blocks counts the longest sequence's query blocks.
  const fa_i32* cu_seqlens_q;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_q;
  const fa_i32* seqused_k;
  /// FA_VARLEN with the packed schedule (`flash_varlen_schedule`; null: the padded one): one
  /// FAVarlenWork per work item, num_items of them.
  const fa_i32* schedule;
  /// ALiBi (kernels compiled with FA_ALIBI), as in FAForwardParams.
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  /// Dropout (kernels compiled with FA_DROPOUT), as in FAForwardParams.
  FADropoutParams dropout;
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  fa_i32 padding[14];
} FAHopperForwardParams;

/// `flash_bwd_hopper`: dK and dV of one key block (and, in the fused form, dQ additions).
typedef struct FAHopperBackwardParams {
  FATensorMap tm_q;
  FATensorMap tm_k;
  FATensorMap tm_v;
  FATensorMap tm_dout;
  /// The preprocess's LSE2 and D, `[batch, heads_q, seqlen_q]`, contiguous.
  const float* lse2;
  const float* delta;
  /// `[batch, seqlen_q, heads_q, head_dim]` fp32 (fused form; unused in the split form).
  float* dq_accum;
  fa_u16* dk;
  fa_u16* dv;
  FAStrides dk_strides;
  FAStrides dv_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 heads_q;
  fa_i32 group;
  float scale;
  /// scale * log2(e).
  float scale_log2;
  fa_i32 window_left;
  fa_i32 window_right;
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  fa_i32 padding[2];
  /// Packed variable-length batches (FA_VARLEN; null otherwise), as in FAHopperForwardParams;
  /// seqlen_q/k are then the maximum lengths (the scratch's rows per (batch, head)).
  const fa_i32* cu_seqlens_q;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_q;
  const fa_i32* seqused_k;
  /// FA_VARLEN with the packed schedule (null: the padded grid): one FAVarlenWork per block of
  /// the grid (x only), a key block of one (sequence, kv head).
  const fa_i32* schedule;
  /// FA_VARLEN with packed scratch (> 0, the packed total rows): LSE2 and D `[heads_q,
  /// packed_rows]` and the dQ accumulator `[packed_rows, heads_q, head_dim]` at each
  /// sequence's own rows; 0: padded to seqlen_q rows per (batch, head).
  fa_i32 packed_rows;
  fa_i32 varlen_padding[1];
  /// ALiBi (kernels compiled with FA_ALIBI), as in FAForwardParams.
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  /// Dropout (kernels compiled with FA_DROPOUT), as in FAForwardParams.
  FADropoutParams dropout;
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  fa_i32 dropout_padding[8];
} FAHopperBackwardParams;

/// `flash_bwd_dq_hopper`: dQ of one query block, written once (the split backward).
typedef struct FAHopperBackwardDQParams {
  FATensorMap tm_q;
  FATensorMap tm_k;
  FATensorMap tm_v;
  FATensorMap tm_dout;
  const float* lse2;
  const float* delta;
  fa_u16* dq;
  FAStrides dq_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 heads_q;
  fa_i32 group;
  float scale;
  float scale_log2;
  fa_i32 window_left;
  fa_i32 window_right;
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  fa_i32 padding[12];
  /// Packed variable-length batches (FA_VARLEN; null otherwise), as in FAHopperForwardParams;
  /// seqlen_q/k are then the maximum lengths (the scratch's rows per (batch, head)).
  const fa_i32* cu_seqlens_q;
  const fa_i32* cu_seqlens_k;
  const fa_i32* seqused_q;
  const fa_i32* seqused_k;
  /// FA_VARLEN with the packed schedule (null: the padded grid): one FAVarlenWork per block of
  /// the grid (x only), a query block of one (sequence, query head).
  const fa_i32* schedule;
  /// FA_VARLEN with packed scratch (> 0, the packed total rows): LSE2 and D `[heads_q,
  /// packed_rows]` at each sequence's own rows; 0: padded to seqlen_q rows per (batch, head).
  fa_i32 packed_rows;
  fa_i32 varlen_padding[1];
  /// ALiBi (kernels compiled with FA_ALIBI), as in FAForwardParams.
  const float* alibi_slopes;
  fa_i64 alibi_batch_stride;
  /// Dropout (kernels compiled with FA_DROPOUT), as in FAForwardParams.
  FADropoutParams dropout;
  /// To a multiple of 64 bytes, the device's alignment of the struct.
  fa_i32 dropout_padding[8];
} FAHopperBackwardDQParams;

// -------------------------------------------------------------------------------------------
// Packed variable-length batches: common/varlen_clear.cu
// -------------------------------------------------------------------------------------------

/// `flash_varlen_clear`: the rows of a packed `(total, heads, width)` tensor that no sequence
/// computes (past `seqused[b]` within sequence b, and after the last sequence) set to 0, and the
/// same columns of an optional LSE `(heads, total)` set to -inf. Block row y = b < batch clears
/// sequence b's unused rows, y = batch the rows after the last sequence.
typedef struct FAVarlenClearParams {
  fa_u16* tensor;
  /// Element strides of the tensor's rows and heads.
  fa_i64 row_stride;
  fa_i64 head_stride;
  /// Optional (null: none); its column stride is 1.
  float* lse;
  fa_i64 lse_head_stride;
  const fa_i32* cu_seqlens;
  /// Optional (null: every row of a sequence is used).
  const fa_i32* seqused;
  fa_i32 batch;
  fa_i32 total;
  fa_i32 heads;
  /// Elements per (row, head).
  fa_i32 width;
} FAVarlenClearParams;

/// `flash_varlen_schedule` (common/varlen_schedule.cu): the work list of a packed batch for the
/// Hopper kernels' packed schedule. Each entry is four int32 (FAVarlenWork): the sequence (-1:
/// no work, the list's tail), the head, the unit (a block of `block_rows` rows of the sequence,
/// or with `paired` the pair of blocks u and n-1-u) and the sequence's block count n. Sequences
/// come longest-first by the rows of the other side (`cu_other`: what one unit's cost grows
/// with; up to 1024 sequences are sorted, more keep their order), each with its units for every
/// head (a head's units consecutive), so that every grid block has a real tile and the longest
/// ones start first. One block of 1024 threads writes `capacity` entries.
typedef struct FAVarlenScheduleParams {
  fa_i32* work;
  const fa_i32* cu_seqlens;
  /// Optional (null: every row of a sequence is used).
  const fa_i32* seqused;
  const fa_i32* cu_other;
  /// Optional.
  const fa_i32* seqused_other;
  fa_i32 batch;
  fa_i32 heads;
  fa_i32 block_rows;
  /// 1: a unit is a pair of blocks (the forward's causal pairing).
  fa_i32 paired;
  /// The maximum lengths (rows past them are never a sequence's; common/varlen.cuh).
  fa_i32 max_rows;
  fa_i32 max_other;
  /// Entries to write (the grid's blocks).
  fa_i32 capacity;
  fa_i32 padding;
} FAVarlenScheduleParams;

// -------------------------------------------------------------------------------------------
// Standard attention (the benchmark's baseline): standard/standard_attention.cu
// -------------------------------------------------------------------------------------------

/// `standard_gemm_abt`: C = A B^T per (batch, query head) over the head dim, then by `mode`:
/// 0 S = scale C (hidden keys -inf), 1 P = exp(scale C - LSE) (hidden 0), 2 C (dP = dO V^T).
typedef struct FAStandardScoresParams {
  const fa_u16* a;
  FAStrides a_strides;
  const fa_u16* b;
  FAStrides b_strides;
  float* c;
  const float* lse;
  FAStatsStrides lse_strides;
  fa_i32 rows;
  fa_i32 columns;
  fa_i32 depth;
  fa_i32 heads_q;
  fa_i32 group;
  float scale;
  fa_i32 window_left;
  fa_i32 window_right;
  fa_i32 mode;
} FAStandardScoresParams;

/// `standard_softmax`: each row of S to P in place, and its LSE.
typedef struct FAStandardSoftmaxParams {
  float* scores;
  float* lse;
  FAStatsStrides lse_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 heads_q;
} FAStandardSoftmaxParams;

/// `standard_gemm_pb` (P B) and `standard_gemm_ptb` (P^T B): an fp32 matrix per (batch, query
/// head) times a tensor, times `factor`, into the storage dtype (P^T B sums the GQA group).
typedef struct FAStandardProductParams {
  const float* p;
  const fa_u16* b;
  FAStrides b_strides;
  fa_u16* out;
  FAStrides out_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 width;
  fa_i32 heads_q;
  fa_i32 group;
  float factor;
} FAStandardProductParams;

/// `standard_softmax_backward`: dS = P (dP - rowsum(dO O)) in place of dP.
typedef struct FAStandardSoftmaxBackwardParams {
  const float* p;
  float* ds;
  const fa_u16* dout;
  FAStrides dout_strides;
  const fa_u16* out;
  FAStrides out_strides;
  fa_i32 seqlen_q;
  fa_i32 seqlen_k;
  fa_i32 head_dim_v;
  fa_i32 heads_q;
} FAStandardSoftmaxBackwardParams;

// -------------------------------------------------------------------------------------------
// KV-cache kernels (sm80 and later): decode/append.cu, decode/decode.cu, decode/combine.cu
// -------------------------------------------------------------------------------------------

/// Where the keys of a KV-cache call live: device int32 index data, read by the kernels and
/// trusted (never copied to the host). Sequence b holds `seqlens[b] + seqlen_new` keys after the
/// append. A contiguous cache `[batch_cache, seqlen_cache, heads_kv, dim]` keeps sequence b in
/// cache row `batch_idx[b]` (row b without it); a paged one `[num_pages, page_size, heads_kv,
/// dim]` keeps its token t in page `page_table[b, t / page_size]`, row t % page_size. Strides are
/// in elements.
typedef struct FACacheIndex {
  const fa_i32* seqlens;
  /// Null: sequence b uses cache row b (contiguous caches only).
  const fa_i32* batch_idx;
  /// Null: a contiguous cache.
  const fa_i32* page_table;
  fa_i64 seqlens_stride;
  fa_i64 batch_idx_stride;
  fa_i64 page_table_batch_stride;
  fa_i64 page_table_page_stride;
  /// Rows per page (paged caches; unused otherwise).
  fa_i32 page_size;
  /// Tokens this call appends to every sequence (0 without new keys).
  fa_i32 seqlen_new;
} FACacheIndex;

/// `kv_append`: the new keys and values `[batch, seqlen_new, heads_kv, dim]` written into the
/// cache at `seqlens[b]`, one 16-byte chunk per thread.
typedef struct FAKVAppendParams {
  const fa_u16* k_new;
  const fa_u16* v_new;
  fa_u16* k_cache;
  fa_u16* v_cache;
  FAStrides k_new_strides;
  FAStrides v_new_strides;
  /// `batch` is the stride of a cache row (contiguous) or of a page (paged).
  FAStrides k_cache_strides;
  FAStrides v_cache_strides;
  FACacheIndex index;
  fa_i32 heads_kv;
  fa_i32 head_dim;
  fa_i32 head_dim_v;
  fa_i32 padding;
} FAKVAppendParams;

/// `flash_decode`: attention of one (sequence, kv head, block of packed query rows, key split)
/// per CTA. The packed rows are (query token i, query head h of the kv head's group) in the order
/// r = i * group + h. With `num_splits` 1 the CTA writes O and the LSE; with more it writes its
/// split's normalized O and LSE into `o_partial` `[num_splits, batch, heads_q, seqlen_q,
/// head_dim_v]` and `lse_partial` `[num_splits, batch, heads_q, seqlen_q]` (fp32, contiguous)
/// for `flash_decode_combine`, or merges them itself (`split_counters`).
typedef struct FADecodeParams {
  const fa_u16* q;
  const fa_u16* k_cache;
  const fa_u16* v_cache;
  fa_u16* o;
  float* lse;
  float* o_partial;
  float* lse_partial;
  FAStrides q_strides;
  FAStrides k_strides;
  FAStrides v_strides;
  FAStrides o_strides;
  FAStatsStrides lse_strides;
  FACacheIndex index;
  fa_i32 batch;
  fa_i32 seqlen_q;
  fa_i32 heads_q;
  /// Query heads per kv head (GQA).
  fa_i32 group;
  fa_i32 num_splits;
  float scale;
  /// 0: no softcap.
  float softcap;
  fa_i32 window_left;
  fa_i32 window_right;
  fa_i32 padding;
  /// The fused merge of several splits (nil: `flash_decode_combine` merges them in a second
  /// launch): one counter per (row block, kv head, sequence), `[batch, heads_kv, row_blocks]`,
  /// 0 before the launch and 0 again after it; the last split CTA of a row block to take a ticket
  /// merges the block's rows.
  fa_i32* split_counters;
} FADecodeParams;

/// `flash_decode_combine`: O and LSE of each row from its splits, weighted by exp(lse_s - lse).
typedef struct FADecodeCombineParams {
  const float* o_partial;
  const float* lse_partial;
  fa_u16* o;
  float* lse;
  FAStrides o_strides;
  FAStatsStrides lse_strides;
  fa_i32 batch;
  fa_i32 seqlen_q;
  fa_i32 heads_q;
  fa_i32 num_splits;
} FADecodeCombineParams;

/// `l2_sweep` (decode/l2_sweep.cu): reads `count` 16-byte words of `data` and writes nothing:
/// the L2 then holds clean lines (bench --grid decode --decode-flush clean), and its time is the
/// read floor of the decode's bytes (--decode-read-floor).
typedef struct FAL2SweepParams {
  const fa_u64* data;
  fa_i64 count;
} FAL2SweepParams;

// -------------------------------------------------------------------------------------------
// The layout, pinned: Swift (Clang) and NVRTC must agree on every offset, or a kernel reads
// garbage. Append new fields at the end of a struct and add their lines here.
// -------------------------------------------------------------------------------------------

#define FA_ABI_SIZE(type, size) FA_ABI_ASSERT(sizeof(type) == size, #type " size")
#define FA_ABI_FIELD(type, field, offset) \
  FA_ABI_ASSERT(FA_ABI_OFFSET(type, field) == offset, #type "." #field " offset")

FA_ABI_SIZE(FAStrides, 24);
FA_ABI_FIELD(FAStrides, batch, 0);
FA_ABI_FIELD(FAStrides, row, 8);
FA_ABI_FIELD(FAStrides, head, 16);

FA_ABI_SIZE(FAStatsStrides, 16);
FA_ABI_FIELD(FAStatsStrides, batch, 0);
FA_ABI_FIELD(FAStatsStrides, head, 8);

FA_ABI_SIZE(FATensorMap, 128);
#ifdef __CUDACC_RTC__
FA_ABI_ASSERT(alignof(FATensorMap) == 64 && alignof(FAHopperForwardParams) == 64, "tensor maps 64-byte aligned");
#endif
FA_ABI_FIELD(FATensorMap, words, 0);

FA_ABI_SIZE(FADropoutParams, 32);
FA_ABI_FIELD(FADropoutParams, seed, 0);
FA_ABI_FIELD(FADropoutParams, offset, 8);
FA_ABI_FIELD(FADropoutParams, threshold, 16);
FA_ABI_FIELD(FADropoutParams, keep_scale, 20);
FA_ABI_FIELD(FADropoutParams, batch_head_base, 24);
FA_ABI_FIELD(FADropoutParams, heads_q, 28);

FA_ABI_SIZE(FAForwardParams, 264);
FA_ABI_FIELD(FAForwardParams, q, 0);
FA_ABI_FIELD(FAForwardParams, k, 8);
FA_ABI_FIELD(FAForwardParams, v, 16);
FA_ABI_FIELD(FAForwardParams, o, 24);
FA_ABI_FIELD(FAForwardParams, lse, 32);
FA_ABI_FIELD(FAForwardParams, q_strides, 40);
FA_ABI_FIELD(FAForwardParams, k_strides, 64);
FA_ABI_FIELD(FAForwardParams, v_strides, 88);
FA_ABI_FIELD(FAForwardParams, o_strides, 112);
FA_ABI_FIELD(FAForwardParams, lse_strides, 136);
FA_ABI_FIELD(FAForwardParams, seqlen_q, 152);
FA_ABI_FIELD(FAForwardParams, seqlen_k, 156);
FA_ABI_FIELD(FAForwardParams, group, 160);
FA_ABI_FIELD(FAForwardParams, scale, 164);
FA_ABI_FIELD(FAForwardParams, softcap, 168);
FA_ABI_FIELD(FAForwardParams, window_left, 172);
FA_ABI_FIELD(FAForwardParams, window_right, 176);
FA_ABI_FIELD(FAForwardParams, alibi_slopes, 184);
FA_ABI_FIELD(FAForwardParams, alibi_batch_stride, 192);
FA_ABI_FIELD(FAForwardParams, cu_seqlens_q, 200);
FA_ABI_FIELD(FAForwardParams, cu_seqlens_k, 208);
FA_ABI_FIELD(FAForwardParams, seqused_q, 216);
FA_ABI_FIELD(FAForwardParams, seqused_k, 224);
FA_ABI_FIELD(FAForwardParams, dropout, 232);

FA_ABI_SIZE(FABackwardPreprocessParams, 320);
FA_ABI_FIELD(FABackwardPreprocessParams, o, 0);
FA_ABI_FIELD(FABackwardPreprocessParams, dout, 8);
FA_ABI_FIELD(FABackwardPreprocessParams, lse, 16);
FA_ABI_FIELD(FABackwardPreprocessParams, lse2, 24);
FA_ABI_FIELD(FABackwardPreprocessParams, delta, 32);
FA_ABI_FIELD(FABackwardPreprocessParams, o_strides, 40);
FA_ABI_FIELD(FABackwardPreprocessParams, dout_strides, 64);
FA_ABI_FIELD(FABackwardPreprocessParams, lse_strides, 88);
FA_ABI_FIELD(FABackwardPreprocessParams, seqlen_q, 104);
FA_ABI_FIELD(FABackwardPreprocessParams, heads_q, 108);
FA_ABI_FIELD(FABackwardPreprocessParams, cu_seqlens_q, 112);
FA_ABI_FIELD(FABackwardPreprocessParams, seqused_q, 120);
FA_ABI_FIELD(FABackwardPreprocessParams, q, 128);
FA_ABI_FIELD(FABackwardPreprocessParams, k, 136);
FA_ABI_FIELD(FABackwardPreprocessParams, v, 144);
FA_ABI_FIELD(FABackwardPreprocessParams, q_strides, 152);
FA_ABI_FIELD(FABackwardPreprocessParams, k_strides, 176);
FA_ABI_FIELD(FABackwardPreprocessParams, v_strides, 200);
FA_ABI_FIELD(FABackwardPreprocessParams, seqlen_k, 224);
FA_ABI_FIELD(FABackwardPreprocessParams, group, 228);
FA_ABI_FIELD(FABackwardPreprocessParams, scale, 232);
FA_ABI_FIELD(FABackwardPreprocessParams, softcap, 236);
FA_ABI_FIELD(FABackwardPreprocessParams, window_left, 240);
FA_ABI_FIELD(FABackwardPreprocessParams, window_right, 244);
FA_ABI_FIELD(FABackwardPreprocessParams, alibi_slopes, 248);
FA_ABI_FIELD(FABackwardPreprocessParams, alibi_batch_stride, 256);
FA_ABI_FIELD(FABackwardPreprocessParams, cu_seqlens_k, 264);
FA_ABI_FIELD(FABackwardPreprocessParams, seqused_k, 272);
FA_ABI_FIELD(FABackwardPreprocessParams, dropout, 280);
FA_ABI_FIELD(FABackwardPreprocessParams, packed_rows, 312);

FA_ABI_SIZE(FABackwardKeyValueParams, 328);
FA_ABI_FIELD(FABackwardKeyValueParams, q, 0);
FA_ABI_FIELD(FABackwardKeyValueParams, k, 8);
FA_ABI_FIELD(FABackwardKeyValueParams, v, 16);
FA_ABI_FIELD(FABackwardKeyValueParams, dout, 24);
FA_ABI_FIELD(FABackwardKeyValueParams, lse2, 32);
FA_ABI_FIELD(FABackwardKeyValueParams, delta, 40);
FA_ABI_FIELD(FABackwardKeyValueParams, dq_accum, 48);
FA_ABI_FIELD(FABackwardKeyValueParams, dk, 56);
FA_ABI_FIELD(FABackwardKeyValueParams, dv, 64);
FA_ABI_FIELD(FABackwardKeyValueParams, q_strides, 72);
FA_ABI_FIELD(FABackwardKeyValueParams, k_strides, 96);
FA_ABI_FIELD(FABackwardKeyValueParams, v_strides, 120);
FA_ABI_FIELD(FABackwardKeyValueParams, dout_strides, 144);
FA_ABI_FIELD(FABackwardKeyValueParams, dk_strides, 168);
FA_ABI_FIELD(FABackwardKeyValueParams, dv_strides, 192);
FA_ABI_FIELD(FABackwardKeyValueParams, seqlen_q, 216);
FA_ABI_FIELD(FABackwardKeyValueParams, seqlen_k, 220);
FA_ABI_FIELD(FABackwardKeyValueParams, group, 224);
FA_ABI_FIELD(FABackwardKeyValueParams, scale, 228);
FA_ABI_FIELD(FABackwardKeyValueParams, softcap, 232);
FA_ABI_FIELD(FABackwardKeyValueParams, window_left, 236);
FA_ABI_FIELD(FABackwardKeyValueParams, window_right, 240);
FA_ABI_FIELD(FABackwardKeyValueParams, key_block_base, 244);
FA_ABI_FIELD(FABackwardKeyValueParams, alibi_slopes, 248);
FA_ABI_FIELD(FABackwardKeyValueParams, alibi_batch_stride, 256);
FA_ABI_FIELD(FABackwardKeyValueParams, cu_seqlens_q, 264);
FA_ABI_FIELD(FABackwardKeyValueParams, cu_seqlens_k, 272);
FA_ABI_FIELD(FABackwardKeyValueParams, seqused_q, 280);
FA_ABI_FIELD(FABackwardKeyValueParams, seqused_k, 288);
FA_ABI_FIELD(FABackwardKeyValueParams, dropout, 296);

FA_ABI_SIZE(FABackwardConvertParams, 80);
FA_ABI_FIELD(FABackwardConvertParams, dq_accum, 0);
FA_ABI_FIELD(FABackwardConvertParams, dq, 8);
FA_ABI_FIELD(FABackwardConvertParams, dq_strides, 16);
FA_ABI_FIELD(FABackwardConvertParams, seqlen_q, 40);
FA_ABI_FIELD(FABackwardConvertParams, heads_q, 44);
FA_ABI_FIELD(FABackwardConvertParams, scale, 48);
FA_ABI_FIELD(FABackwardConvertParams, cu_seqlens_q, 56);
FA_ABI_FIELD(FABackwardConvertParams, seqused_q, 64);
FA_ABI_FIELD(FABackwardConvertParams, packed_rows, 72);

FA_ABI_SIZE(FAVarlenScheduleParams, 72);
FA_ABI_FIELD(FAVarlenScheduleParams, work, 0);
FA_ABI_FIELD(FAVarlenScheduleParams, cu_seqlens, 8);
FA_ABI_FIELD(FAVarlenScheduleParams, seqused, 16);
FA_ABI_FIELD(FAVarlenScheduleParams, cu_other, 24);
FA_ABI_FIELD(FAVarlenScheduleParams, seqused_other, 32);
FA_ABI_FIELD(FAVarlenScheduleParams, batch, 40);
FA_ABI_FIELD(FAVarlenScheduleParams, heads, 44);
FA_ABI_FIELD(FAVarlenScheduleParams, block_rows, 48);
FA_ABI_FIELD(FAVarlenScheduleParams, paired, 52);
FA_ABI_FIELD(FAVarlenScheduleParams, max_rows, 56);
FA_ABI_FIELD(FAVarlenScheduleParams, max_other, 60);
FA_ABI_FIELD(FAVarlenScheduleParams, capacity, 64);
FA_ABI_FIELD(FAVarlenScheduleParams, padding, 68);
FA_ABI_SIZE(FAVarlenClearParams, 72);
FA_ABI_FIELD(FAVarlenClearParams, tensor, 0);
FA_ABI_FIELD(FAVarlenClearParams, row_stride, 8);
FA_ABI_FIELD(FAVarlenClearParams, head_stride, 16);
FA_ABI_FIELD(FAVarlenClearParams, lse, 24);
FA_ABI_FIELD(FAVarlenClearParams, lse_head_stride, 32);
FA_ABI_FIELD(FAVarlenClearParams, cu_seqlens, 40);
FA_ABI_FIELD(FAVarlenClearParams, seqused, 48);
FA_ABI_FIELD(FAVarlenClearParams, batch, 56);
FA_ABI_FIELD(FAVarlenClearParams, total, 60);
FA_ABI_FIELD(FAVarlenClearParams, heads, 64);
FA_ABI_FIELD(FAVarlenClearParams, width, 68);

FA_ABI_SIZE(FAHopperForwardParams, 704);
FA_ABI_FIELD(FAHopperForwardParams, tm_q, 0);
FA_ABI_FIELD(FAHopperForwardParams, tm_k, 128);
FA_ABI_FIELD(FAHopperForwardParams, tm_v, 256);
FA_ABI_FIELD(FAHopperForwardParams, o, 384);
FA_ABI_FIELD(FAHopperForwardParams, lse, 392);
FA_ABI_FIELD(FAHopperForwardParams, seqlen_q, 400);
FA_ABI_FIELD(FAHopperForwardParams, seqlen_k, 404);
FA_ABI_FIELD(FAHopperForwardParams, heads_q, 408);
FA_ABI_FIELD(FAHopperForwardParams, group, 412);
FA_ABI_FIELD(FAHopperForwardParams, m_blocks, 416);
FA_ABI_FIELD(FAHopperForwardParams, num_items, 420);
FA_ABI_FIELD(FAHopperForwardParams, o_strides, 424);
FA_ABI_FIELD(FAHopperForwardParams, lse_strides, 448);
FA_ABI_FIELD(FAHopperForwardParams, scale_log2, 464);
FA_ABI_FIELD(FAHopperForwardParams, softcap_over, 468);
FA_ABI_FIELD(FAHopperForwardParams, softcap_log2, 472);
FA_ABI_FIELD(FAHopperForwardParams, window_left, 476);
FA_ABI_FIELD(FAHopperForwardParams, window_right, 480);
FA_ABI_FIELD(FAHopperForwardParams, alignment_padding, 484);
FA_ABI_FIELD(FAHopperForwardParams, q_descale, 488);
FA_ABI_FIELD(FAHopperForwardParams, k_descale, 496);
FA_ABI_FIELD(FAHopperForwardParams, v_descale, 504);
FA_ABI_FIELD(FAHopperForwardParams, descale_strides, 512);
FA_ABI_FIELD(FAHopperForwardParams, cu_seqlens_q, 560);
FA_ABI_FIELD(FAHopperForwardParams, cu_seqlens_k, 568);
FA_ABI_FIELD(FAHopperForwardParams, seqused_q, 576);
FA_ABI_FIELD(FAHopperForwardParams, seqused_k, 584);
FA_ABI_FIELD(FAHopperForwardParams, schedule, 592);
FA_ABI_FIELD(FAHopperForwardParams, alibi_slopes, 600);
FA_ABI_FIELD(FAHopperForwardParams, alibi_batch_stride, 608);
FA_ABI_FIELD(FAHopperForwardParams, dropout, 616);
FA_ABI_FIELD(FAHopperForwardParams, padding, 648);

FA_ABI_SIZE(FAHopperBackwardParams, 768);
FA_ABI_FIELD(FAHopperBackwardParams, tm_q, 0);
FA_ABI_FIELD(FAHopperBackwardParams, tm_k, 128);
FA_ABI_FIELD(FAHopperBackwardParams, tm_v, 256);
FA_ABI_FIELD(FAHopperBackwardParams, tm_dout, 384);
FA_ABI_FIELD(FAHopperBackwardParams, lse2, 512);
FA_ABI_FIELD(FAHopperBackwardParams, delta, 520);
FA_ABI_FIELD(FAHopperBackwardParams, dq_accum, 528);
FA_ABI_FIELD(FAHopperBackwardParams, dk, 536);
FA_ABI_FIELD(FAHopperBackwardParams, dv, 544);
FA_ABI_FIELD(FAHopperBackwardParams, dk_strides, 552);
FA_ABI_FIELD(FAHopperBackwardParams, dv_strides, 576);
FA_ABI_FIELD(FAHopperBackwardParams, seqlen_q, 600);
FA_ABI_FIELD(FAHopperBackwardParams, seqlen_k, 604);
FA_ABI_FIELD(FAHopperBackwardParams, heads_q, 608);
FA_ABI_FIELD(FAHopperBackwardParams, group, 612);
FA_ABI_FIELD(FAHopperBackwardParams, scale, 616);
FA_ABI_FIELD(FAHopperBackwardParams, scale_log2, 620);
FA_ABI_FIELD(FAHopperBackwardParams, window_left, 624);
FA_ABI_FIELD(FAHopperBackwardParams, window_right, 628);
FA_ABI_FIELD(FAHopperBackwardParams, padding, 632);
FA_ABI_FIELD(FAHopperBackwardParams, cu_seqlens_q, 640);
FA_ABI_FIELD(FAHopperBackwardParams, cu_seqlens_k, 648);
FA_ABI_FIELD(FAHopperBackwardParams, seqused_q, 656);
FA_ABI_FIELD(FAHopperBackwardParams, seqused_k, 664);
FA_ABI_FIELD(FAHopperBackwardParams, schedule, 672);
FA_ABI_FIELD(FAHopperBackwardParams, packed_rows, 680);
FA_ABI_FIELD(FAHopperBackwardParams, varlen_padding, 684);
FA_ABI_FIELD(FAHopperBackwardParams, alibi_slopes, 688);
FA_ABI_FIELD(FAHopperBackwardParams, alibi_batch_stride, 696);
FA_ABI_FIELD(FAHopperBackwardParams, dropout, 704);
FA_ABI_FIELD(FAHopperBackwardParams, dropout_padding, 736);

FA_ABI_SIZE(FAHopperBackwardDQParams, 768);
FA_ABI_FIELD(FAHopperBackwardDQParams, tm_q, 0);
FA_ABI_FIELD(FAHopperBackwardDQParams, tm_k, 128);
FA_ABI_FIELD(FAHopperBackwardDQParams, tm_v, 256);
FA_ABI_FIELD(FAHopperBackwardDQParams, tm_dout, 384);
FA_ABI_FIELD(FAHopperBackwardDQParams, lse2, 512);
FA_ABI_FIELD(FAHopperBackwardDQParams, delta, 520);
FA_ABI_FIELD(FAHopperBackwardDQParams, dq, 528);
FA_ABI_FIELD(FAHopperBackwardDQParams, dq_strides, 536);
FA_ABI_FIELD(FAHopperBackwardDQParams, seqlen_q, 560);
FA_ABI_FIELD(FAHopperBackwardDQParams, seqlen_k, 564);
FA_ABI_FIELD(FAHopperBackwardDQParams, heads_q, 568);
FA_ABI_FIELD(FAHopperBackwardDQParams, group, 572);
FA_ABI_FIELD(FAHopperBackwardDQParams, scale, 576);
FA_ABI_FIELD(FAHopperBackwardDQParams, scale_log2, 580);
FA_ABI_FIELD(FAHopperBackwardDQParams, window_left, 584);
FA_ABI_FIELD(FAHopperBackwardDQParams, window_right, 588);
FA_ABI_FIELD(FAHopperBackwardDQParams, padding, 592);
FA_ABI_FIELD(FAHopperBackwardDQParams, cu_seqlens_q, 640);
FA_ABI_FIELD(FAHopperBackwardDQParams, cu_seqlens_k, 648);
FA_ABI_FIELD(FAHopperBackwardDQParams, seqused_q, 656);
FA_ABI_FIELD(FAHopperBackwardDQParams, seqused_k, 664);
FA_ABI_FIELD(FAHopperBackwardDQParams, schedule, 672);
FA_ABI_FIELD(FAHopperBackwardDQParams, packed_rows, 680);
FA_ABI_FIELD(FAHopperBackwardDQParams, varlen_padding, 684);
FA_ABI_FIELD(FAHopperBackwardDQParams, alibi_slopes, 688);
FA_ABI_FIELD(FAHopperBackwardDQParams, alibi_batch_stride, 696);
FA_ABI_FIELD(FAHopperBackwardDQParams, dropout, 704);
FA_ABI_FIELD(FAHopperBackwardDQParams, dropout_padding, 736);

FA_ABI_SIZE(FAStandardScoresParams, 136);
FA_ABI_FIELD(FAStandardScoresParams, a, 0);
FA_ABI_FIELD(FAStandardScoresParams, a_strides, 8);
FA_ABI_FIELD(FAStandardScoresParams, b, 32);
FA_ABI_FIELD(FAStandardScoresParams, b_strides, 40);
FA_ABI_FIELD(FAStandardScoresParams, c, 64);
FA_ABI_FIELD(FAStandardScoresParams, lse, 72);
FA_ABI_FIELD(FAStandardScoresParams, lse_strides, 80);
FA_ABI_FIELD(FAStandardScoresParams, rows, 96);
FA_ABI_FIELD(FAStandardScoresParams, columns, 100);
FA_ABI_FIELD(FAStandardScoresParams, depth, 104);
FA_ABI_FIELD(FAStandardScoresParams, heads_q, 108);
FA_ABI_FIELD(FAStandardScoresParams, group, 112);
FA_ABI_FIELD(FAStandardScoresParams, scale, 116);
FA_ABI_FIELD(FAStandardScoresParams, window_left, 120);
FA_ABI_FIELD(FAStandardScoresParams, window_right, 124);
FA_ABI_FIELD(FAStandardScoresParams, mode, 128);

FA_ABI_SIZE(FAStandardSoftmaxParams, 48);
FA_ABI_FIELD(FAStandardSoftmaxParams, scores, 0);
FA_ABI_FIELD(FAStandardSoftmaxParams, lse, 8);
FA_ABI_FIELD(FAStandardSoftmaxParams, lse_strides, 16);
FA_ABI_FIELD(FAStandardSoftmaxParams, seqlen_q, 32);
FA_ABI_FIELD(FAStandardSoftmaxParams, seqlen_k, 36);
FA_ABI_FIELD(FAStandardSoftmaxParams, heads_q, 40);

FA_ABI_SIZE(FAStandardProductParams, 96);
FA_ABI_FIELD(FAStandardProductParams, p, 0);
FA_ABI_FIELD(FAStandardProductParams, b, 8);
FA_ABI_FIELD(FAStandardProductParams, b_strides, 16);
FA_ABI_FIELD(FAStandardProductParams, out, 40);
FA_ABI_FIELD(FAStandardProductParams, out_strides, 48);
FA_ABI_FIELD(FAStandardProductParams, seqlen_q, 72);
FA_ABI_FIELD(FAStandardProductParams, seqlen_k, 76);
FA_ABI_FIELD(FAStandardProductParams, width, 80);
FA_ABI_FIELD(FAStandardProductParams, heads_q, 84);
FA_ABI_FIELD(FAStandardProductParams, group, 88);
FA_ABI_FIELD(FAStandardProductParams, factor, 92);

FA_ABI_SIZE(FAStandardSoftmaxBackwardParams, 96);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, p, 0);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, ds, 8);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, dout, 16);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, dout_strides, 24);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, out, 48);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, out_strides, 56);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, seqlen_q, 80);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, seqlen_k, 84);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, head_dim_v, 88);
FA_ABI_FIELD(FAStandardSoftmaxBackwardParams, heads_q, 92);

FA_ABI_SIZE(FACacheIndex, 64);
FA_ABI_FIELD(FACacheIndex, seqlens, 0);
FA_ABI_FIELD(FACacheIndex, batch_idx, 8);
FA_ABI_FIELD(FACacheIndex, page_table, 16);
FA_ABI_FIELD(FACacheIndex, seqlens_stride, 24);
FA_ABI_FIELD(FACacheIndex, batch_idx_stride, 32);
FA_ABI_FIELD(FACacheIndex, page_table_batch_stride, 40);
FA_ABI_FIELD(FACacheIndex, page_table_page_stride, 48);
FA_ABI_FIELD(FACacheIndex, page_size, 56);
FA_ABI_FIELD(FACacheIndex, seqlen_new, 60);

FA_ABI_SIZE(FAKVAppendParams, 208);
FA_ABI_FIELD(FAKVAppendParams, k_new, 0);
FA_ABI_FIELD(FAKVAppendParams, v_new, 8);
FA_ABI_FIELD(FAKVAppendParams, k_cache, 16);
FA_ABI_FIELD(FAKVAppendParams, v_cache, 24);
FA_ABI_FIELD(FAKVAppendParams, k_new_strides, 32);
FA_ABI_FIELD(FAKVAppendParams, v_new_strides, 56);
FA_ABI_FIELD(FAKVAppendParams, k_cache_strides, 80);
FA_ABI_FIELD(FAKVAppendParams, v_cache_strides, 104);
FA_ABI_FIELD(FAKVAppendParams, index, 128);
FA_ABI_FIELD(FAKVAppendParams, heads_kv, 192);
FA_ABI_FIELD(FAKVAppendParams, head_dim, 196);
FA_ABI_FIELD(FAKVAppendParams, head_dim_v, 200);
FA_ABI_FIELD(FAKVAppendParams, padding, 204);

FA_ABI_SIZE(FADecodeParams, 280);
FA_ABI_FIELD(FADecodeParams, q, 0);
FA_ABI_FIELD(FADecodeParams, k_cache, 8);
FA_ABI_FIELD(FADecodeParams, v_cache, 16);
FA_ABI_FIELD(FADecodeParams, o, 24);
FA_ABI_FIELD(FADecodeParams, lse, 32);
FA_ABI_FIELD(FADecodeParams, o_partial, 40);
FA_ABI_FIELD(FADecodeParams, lse_partial, 48);
FA_ABI_FIELD(FADecodeParams, q_strides, 56);
FA_ABI_FIELD(FADecodeParams, k_strides, 80);
FA_ABI_FIELD(FADecodeParams, v_strides, 104);
FA_ABI_FIELD(FADecodeParams, o_strides, 128);
FA_ABI_FIELD(FADecodeParams, lse_strides, 152);
FA_ABI_FIELD(FADecodeParams, index, 168);
FA_ABI_FIELD(FADecodeParams, batch, 232);
FA_ABI_FIELD(FADecodeParams, seqlen_q, 236);
FA_ABI_FIELD(FADecodeParams, heads_q, 240);
FA_ABI_FIELD(FADecodeParams, group, 244);
FA_ABI_FIELD(FADecodeParams, num_splits, 248);
FA_ABI_FIELD(FADecodeParams, scale, 252);
FA_ABI_FIELD(FADecodeParams, softcap, 256);
FA_ABI_FIELD(FADecodeParams, window_left, 260);
FA_ABI_FIELD(FADecodeParams, window_right, 264);
FA_ABI_FIELD(FADecodeParams, padding, 268);
FA_ABI_FIELD(FADecodeParams, split_counters, 272);

FA_ABI_SIZE(FADecodeCombineParams, 88);
FA_ABI_FIELD(FADecodeCombineParams, o_partial, 0);
FA_ABI_FIELD(FADecodeCombineParams, lse_partial, 8);
FA_ABI_FIELD(FADecodeCombineParams, o, 16);
FA_ABI_FIELD(FADecodeCombineParams, lse, 24);
FA_ABI_FIELD(FADecodeCombineParams, o_strides, 32);
FA_ABI_FIELD(FADecodeCombineParams, lse_strides, 56);
FA_ABI_FIELD(FADecodeCombineParams, batch, 72);
FA_ABI_FIELD(FADecodeCombineParams, seqlen_q, 76);
FA_ABI_FIELD(FADecodeCombineParams, heads_q, 80);
FA_ABI_FIELD(FADecodeCombineParams, num_splits, 84);

FA_ABI_SIZE(FAL2SweepParams, 16);
FA_ABI_FIELD(FAL2SweepParams, data, 0);
FA_ABI_FIELD(FAL2SweepParams, count, 8);

#endif  // FLASH_ATTENTION_KERNEL_ABI_H
