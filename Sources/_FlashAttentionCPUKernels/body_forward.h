// The forward pass's element-wise work on a transposed score tile Sᵀ[key][query]: queries run
// along the vector lanes, so the running max and sum of a group of queries update with vertical
// vector operations.

/// Sets the scores of invisible (query, key) pairs to -inf: key row `r` sees the queries of
/// `mask` for row r, within the first `query_count` columns.
FA_INLINE void fa_mask_rows(float *scores, ptrdiff_t leading, ptrdiff_t rows, ptrdiff_t count, ptrdiff_t padded,
                            const fa_band *mask) {
  for (ptrdiff_t r = 0; r < rows; r++) {
    ptrdiff_t lower, upper;
    fa_band_range(mask, r, 1, count, &lower, &upper);
    float *row = scores + r * leading;
    for (ptrdiff_t i = 0; i < lower; i++) row[i] = -__builtin_inff();
    for (ptrdiff_t i = upper; i < padded; i++) row[i] = -__builtin_inff();
  }
}

static void FA_NAME(forward_step)(const fa_forward_step *t) {
  float *scores = t->scores;
  const ptrdiff_t leading = t->leading, keys = t->key_count;
  if (t->softcap) {
    const fa_vf inner = v_set1(t->softcap_inner), outer = v_set1(t->softcap_outer);
    for (ptrdiff_t key = 0; key < keys; key++) {
      float *row = scores + key * leading;
      for (ptrdiff_t q = 0; q < t->padded_queries; q += FA_LANES) {
        v_store(row + q, v_mul(v_tanh(v_mul(v_load(row + q), inner)), outer));
      }
    }
  }
  if (t->alibi_slope != 0) {
    for (ptrdiff_t key = 0; key < keys; key++) {
      fa_alibi_row(scores + key * leading, t->padded_queries, t->alibi_slope, t->alibi_diagonal - key, 1);
    }
  }
  if (t->mask.enabled) fa_mask_rows(scores, leading, keys, t->query_count, t->query_count, &t->mask);

  // Per group of queries: the new max over this tile's keys, then P = e^(s − max) and the sum.
  // The max is subtracted first, exactly (same units), and only the difference goes to base 2,
  // so the largest score gives exactly 1 whatever its magnitude, and the LSE of a one-hot row is
  // its max, bit for bit what the backward pass's scores give. A NaN score (from a NaN or inf
  // input) need not survive the max: e^(NaN − max) is NaN, and so are the sum and the output.
  const fa_vf negative_infinity = v_set1(-__builtin_inff()), zero = v_zero(), one = v_set1(1.0f);
  const fa_vf log2e = v_set1(1.4426950408889634f);
  bool grew = false;
  for (ptrdiff_t q = 0; q < t->padded_queries; q += FA_LANES) {
    const fa_vf old_max = v_load(t->row_max + q);
    // Four partial maxima: one chain of `keys` dependent max operations would stall on latency.
    fa_vf m0 = old_max, m1 = old_max, m2 = old_max, m3 = old_max;
    ptrdiff_t key = 0;
    for (; key + 4 <= keys; key += 4) {
      m0 = v_max(m0, v_load(scores + key * leading + q));
      m1 = v_max(m1, v_load(scores + (key + 1) * leading + q));
      m2 = v_max(m2, v_load(scores + (key + 2) * leading + q));
      m3 = v_max(m3, v_load(scores + (key + 3) * leading + q));
    }
    for (; key < keys; key++) m0 = v_max(m0, v_load(scores + key * leading + q));
    const fa_vf new_max = v_max(v_max(m0, m1), v_max(m2, m3));
    // A query that has seen only masked keys keeps max -inf; subtracting 0 keeps its
    // probabilities at exactly 0 instead of NaN.
    const fa_vf reference = v_replace_equal(new_max, negative_infinity, zero);
    fa_vf sum0 = zero, sum1 = zero;
    key = 0;
    for (; key + 2 <= keys; key += 2) {
      float *p0 = scores + key * leading + q, *p1 = p0 + leading;
      const fa_vf e0 = v_exp2_nonpositive(v_mul(v_sub(v_load(p0), reference), log2e));
      const fa_vf e1 = v_exp2_nonpositive(v_mul(v_sub(v_load(p1), reference), log2e));
      v_store(p0, e0);
      v_store(p1, e1);
      sum0 = v_add(sum0, e0);
      sum1 = v_add(sum1, e1);
    }
    if (key < keys) {
      float *p0 = scores + key * leading + q;
      const fa_vf e0 = v_exp2_nonpositive(v_mul(v_sub(v_load(p0), reference), log2e));
      v_store(p0, e0);
      sum0 = v_add(sum0, e0);
    }
    const fa_vf factor = v_exp2_nonpositive(v_mul(v_sub(old_max, reference), log2e));
    grew = grew || v_any_not_equal(factor, one);
    v_store(t->alpha + q, factor);
    v_store(t->row_sum + q, v_fma(v_load(t->row_sum + q), factor, v_add(sum0, sum1)));
    v_store(t->row_max + q, new_max);
  }
  if (!grew) return;
  for (ptrdiff_t r = 0; r < t->query_count; r++) {
    const float a = t->alpha[r];
    if (a == 1.0f) continue;
    const fa_vf factor = v_set1(a);
    float *row = t->out + r * t->out_leading;
    for (ptrdiff_t c = 0; c < t->out_width; c += FA_LANES) v_store(row + c, v_mul(v_load(row + c), factor));
  }
}

static void FA_NAME(weighted_column_sums)(
  const float *p, const float *values, ptrdiff_t leading, ptrdiff_t keys, ptrdiff_t padded, const float *alpha,
  float *sums) {
  for (ptrdiff_t q = 0; q < padded; q += FA_LANES) {
    fa_vf total = v_mul(v_load(sums + q), v_load(alpha + q));
    for (ptrdiff_t key = 0; key < keys; key++) {
      const fa_vf weight = v_load(p + key * leading + q);
      total = v_add(total, v_zero_where_zero(v_mul(weight, v_load(values + key * leading + q)), weight));
    }
    v_store(sums + q, total);
  }
}

static void FA_NAME(forward_epilogue)(const fa_forward_epilogue *e) {
  const ptrdiff_t width = e->out.width;
  for (ptrdiff_t r = 0; r < e->count; r++) {
    const float sum = e->row_sum[r];
    float *lse = e->lse + (e->first_row + r) * e->lse_stride;
    if (sum > 0 || sum != sum) {
      float *row = (float *)e->tile + r * e->leading;
      const fa_vf inverse = v_set1(1.0f / sum);
      for (ptrdiff_t c = 0; c < width; c += FA_LANES) v_store(row + c, v_mul(v_load(row + c), inverse));
      FA_NAME(store_row)(&e->out, e->first_row + r, row);
      // In double, rounded once: the max may be as large as float32 goes, the log small.
      *lse = (float)((double)e->row_max[r] + log((double)sum));
    } else {
      char *target = (char *)e->out.base + (e->first_row + r) * e->out.row_stride * fa_dtype_size(e->out.dtype);
      memset(target, 0, (size_t)(width * fa_dtype_size(e->out.dtype)));
      *lse = -__builtin_inff();
    }
  }
}
