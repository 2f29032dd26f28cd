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
