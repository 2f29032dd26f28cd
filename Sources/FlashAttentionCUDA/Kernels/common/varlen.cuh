// Packed variable-length batches (FA_VARLEN 1): where sequence b lies in the packed tensors.
// A kernel compiled without FA_VARLEN sees one fixed-length sequence per batch entry and every
// helper folds to the parameters it had before, so the fixed-length machine code is unchanged.
#pragma once
#include "common/types.cuh"

#ifndef FA_VARLEN
#define FA_VARLEN 0
#endif

// Rows [start, start + used) of the packed tensor are sequence b's rows that count; `length` is
// the sequence's rows in all (those past `used` are cleared by flash_varlen_clear).
struct SequenceRows {
  int start, used;
};

// `cu`: the prefix sums (batch + 1), `seqused`: optional used counts (batch), `fixed`: the
// length of a fixed-length batch (start 0), or with FA_VARLEN the maximum length. The used
// count is clamped into [0, min(length, maximum)]: device index data that no host checked (a
// sequence longer than max_seqlen, seqused past its sequence) cannot move a tile outside its
// own sequence or past the scratch rows that the grids and the backward's buffers are sized by.
__device__ __forceinline__ SequenceRows sequence_rows(const fa_i32* cu, const fa_i32* seqused, int b, int fixed) {
  SequenceRows r;
#if FA_VARLEN
  r.start = cu[b];
  const int length = max(0, cu[b + 1] - r.start);
  r.used = min(seqused ? min(max(seqused[b], 0), length) : length, fixed);
#else
  r.start = 0;
  r.used = fixed;
#endif
  return r;
}

// One entry of the packed schedule (common/varlen_schedule.cu): a work unit of sequence
// `sequence` (-1: none) and head `head`, the unit's index and the sequence's block count.
struct alignas(16) VarlenWork {
  int sequence, head, unit, blocks;
};

// The packed schedule's entry `index` (read once per work item by each role of a block).
__device__ __forceinline__ VarlenWork varlen_work(const fa_i32* schedule, int index) {
  return reinterpret_cast<const VarlenWork*>(schedule)[index];
}

// The backward's scratch rows. Padded (packed_rows 0): LSE2 and D `[batch, heads, seqlen_q]`,
// the dQ accumulator `[batch, seqlen_q, heads, d]`, seqlen_q the longest sequence's rows.
// Packed (packed_rows = the packed tensors' total rows): LSE2 and D `[heads, packed_rows]`, the
// accumulator `[packed_rows, heads, d]`, each sequence at its own rows (start + i), as q and dQ.
__device__ __forceinline__ i64 stats_row(int packed_rows, int batch, int heads, int head, int seqlen_q, int start, int i) {
  return packed_rows > 0 ? (i64)head * packed_rows + start + i : ((i64)batch * heads + head) * seqlen_q + i;
}

// The accumulator row (of heads * d floats) of query row i.
__device__ __forceinline__ i64 accumulator_row(int packed_rows, int batch, int seqlen_q, int start, int i) {
  return packed_rows > 0 ? (i64)start + i : (i64)batch * seqlen_q + i;
}
