// The backward pass's element-wise work on a score tile S[query][key]: queries are rows, keys
// run along the lanes, and a query's LSE and D are one broadcast scalar per row.

static void FA_NAME(backward_probabilities)(const fa_backward_probabilities *t) {
  const ptrdiff_t leading = t->leading, padded = t->padded_keys;
  const fa_vf inner = v_set1(t->softcap_inner), outer = v_set1(t->softcap_outer);
  const fa_vf log2e = v_set1(1.4426950408889634f);
  for (ptrdiff_t r = 0; r < t->rows; r++) {
    float *row = t->scores + r * leading;
    if (t->softcap) {
      float *tanh_row = t->tanh_out + r * leading;
      for (ptrdiff_t c = 0; c < padded; c += FA_LANES) {
        const fa_vf h = v_tanh(v_mul(v_load(row + c), inner));
        v_store(tanh_row + c, h);
        v_store(row + c, v_mul(h, outer));
      }
    }
    if (t->alibi_slope != 0) fa_alibi_row(row, padded, t->alibi_slope, t->alibi_diagonal + r, -1);
    // Keys outside the row's band, and always the padding columns past `key_count` (products
    // with zero-filled Kᵀ columns), get -inf.
    ptrdiff_t lower, upper;
    fa_band_range(&t->mask, r, 1, t->key_count, &lower, &upper);
    for (ptrdiff_t i = 0; i < lower; i++) row[i] = -__builtin_inff();
    for (ptrdiff_t i = upper; i < padded; i++) row[i] = -__builtin_inff();
    // P = e^(s − LSE), the difference taken first, as in the forward pass: the scores have the
    // forward's bits and a one-hot row's LSE is its max, so its largest score gives exactly 1.
    // The difference can be a little above 0 from the LSE's rounding: v_exp2 takes any argument.
    const fa_vf lse = v_set1(t->lse[r]);
    if (t->log_sum) {
      const fa_vf log_sum = v_set1(t->log_sum[r]);
      for (ptrdiff_t c = 0; c < padded; c += FA_LANES) {
        v_store(row + c, v_exp2(v_mul(v_sub(v_sub(v_load(row + c), lse), log_sum), log2e)));
      }
    } else {
      for (ptrdiff_t c = 0; c < padded; c += FA_LANES) {
        v_store(row + c, v_exp2(v_mul(v_sub(v_load(row + c), lse), log2e)));
      }
    }
  }
}

static void FA_NAME(score_gradient)(const fa_score_gradient *g) {
  const fa_vf scale = v_set1(g->scale), one = v_set1(1.0f);
  for (ptrdiff_t r = 0; r < g->rows; r++) {
    const fa_vf d = v_set1(g->row_d[r]);
    const fa_vf d_low = v_set1(g->row_d_low ? g->row_d_low[r] : 0.0f);
    const float *p_row = g->probabilities + r * g->leading;
    float *ds_row = g->gradient + r * g->leading;
    const float *tanh_row = g->tanh ? g->tanh + r * g->leading : 0;
    for (ptrdiff_t c = 0; c < g->columns; c += FA_LANES) {
      const fa_vf p = v_load(p_row + c);
      fa_vf ds = v_mul(v_mul(p, v_sub(v_sub(v_load(ds_row + c), d), d_low)), scale);
      if (tanh_row) {
        const fa_vf h = v_load(tanh_row + c);
        ds = v_mul(ds, v_sub(one, v_mul(h, h)));
      }
      // Selected last: 0 · NaN is NaN, and under a mask dP and tanh may be stale scratch.
      v_store(ds_row + c, v_zero_where_zero(ds, p));
    }
  }
}
