// ALiBi's bias and dropout's keep mask on score tiles: element-wise work outside the plain
// attention's loops (the steps call them only when the feature is on).

#include "fa_philox.h"

/// `row[c] -= slope · |diagonal + direction · c|` for `c < count` (a multiple of the lanes): a
/// forward row (`Sᵀ`, key fixed, queries along the row: direction +1) or a backward row (query
/// fixed, keys along the row: direction −1). The distances are integers below 2^24 in any
/// problem that fits memory, so float arithmetic carries them exactly.
FA_INLINE void fa_alibi_row(float *row, ptrdiff_t count, float slope, ptrdiff_t diagonal, ptrdiff_t direction) {
  float lane_offsets[FA_LANES];
  for (int lane = 0; lane < FA_LANES; lane++) lane_offsets[lane] = (float)(direction * lane);
  const fa_vf lanes = v_load(lane_offsets), negative_slope = v_set1(-slope);
  for (ptrdiff_t c = 0; c < count; c += FA_LANES) {
    const fa_vf distance = v_abs(v_add(v_set1((float)(diagonal + direction * c)), lanes));
    v_store(row + c, v_fma(negative_slope, distance, v_load(row + c)));
  }
}

static void FA_NAME(dropout_factors)(
  const fa_dropout *d, float *factors, ptrdiff_t leading, ptrdiff_t rows, ptrdiff_t columns, bool keys_are_rows) {
  const ptrdiff_t queries = keys_are_rows ? columns : rows;
  const ptrdiff_t keys = keys_are_rows ? rows : columns;
  const ptrdiff_t query_pitch = keys_are_rows ? 1 : leading, key_pitch = keys_are_rows ? leading : 1;
  const ptrdiff_t first_group = d->first_key >> 4, last_group = (d->first_key + keys - 1) >> 4;
  const float scale = d->scale;
  const uint32_t threshold = d->threshold, batch_head = d->batch_head;
  const uint32_t first_query = (uint32_t)d->first_query;
  // Key groups outside, queries inside: the Philox rounds then run over a vector of queries
  // (the only counter word that varies in the loop), one call per sixteen keys of each query.
  for (ptrdiff_t group = first_group; group <= last_group; group++) {
    const ptrdiff_t first_slot = group * 16 < d->first_key ? d->first_key - group * 16 : 0;
    const ptrdiff_t end_slot = group * 16 + 16 > d->first_key + keys ? d->first_key + keys - group * 16 : 16;
    float *column = factors + (group * 16 - d->first_key) * key_pitch;
#pragma clang loop vectorize(enable) interleave(enable)
    for (ptrdiff_t q = 0; q < queries; q++) {
      const fa_philox_words w =
        fa_dropout_words(d->seed, d->offset, batch_head, first_query + (uint32_t)q, (uint32_t)group);
      float *target = column + q * query_pitch;
      // Written out per slot (fa_philox.h's order: slot 8h + 2i + e is byte i of word 2h + e),
      // with conditions the same for every query, so that the loop over queries vectorizes.
#define FA_DROPOUT_SLOT(slot, word, byte)                                                             \
  if (first_slot <= slot && end_slot > slot)                                                          \
    target[slot * key_pitch] = ((word >> (8 * byte)) & 0xFFu) < threshold ? scale : 0.0f;
      FA_DROPOUT_SLOT(0, w.w0, 0)
      FA_DROPOUT_SLOT(1, w.w1, 0)
      FA_DROPOUT_SLOT(2, w.w0, 1)
      FA_DROPOUT_SLOT(3, w.w1, 1)
      FA_DROPOUT_SLOT(4, w.w0, 2)
      FA_DROPOUT_SLOT(5, w.w1, 2)
      FA_DROPOUT_SLOT(6, w.w0, 3)
      FA_DROPOUT_SLOT(7, w.w1, 3)
      FA_DROPOUT_SLOT(8, w.w2, 0)
      FA_DROPOUT_SLOT(9, w.w3, 0)
      FA_DROPOUT_SLOT(10, w.w2, 1)
      FA_DROPOUT_SLOT(11, w.w3, 1)
      FA_DROPOUT_SLOT(12, w.w2, 2)
      FA_DROPOUT_SLOT(13, w.w3, 2)
      FA_DROPOUT_SLOT(14, w.w2, 3)
      FA_DROPOUT_SLOT(15, w.w3, 3)
#undef FA_DROPOUT_SLOT
    }
  }
}

static void FA_NAME(multiply_elementwise)(
  float *tile, const float *factors, ptrdiff_t leading, ptrdiff_t rows, ptrdiff_t columns) {
  for (ptrdiff_t r = 0; r < rows; r++) {
    float *row = tile + r * leading;
    const float *factor = factors + r * leading;
    for (ptrdiff_t c = 0; c < columns; c += FA_LANES) v_store(row + c, v_mul(v_load(row + c), v_load(factor + c)));
  }
}
