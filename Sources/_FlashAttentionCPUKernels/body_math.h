// Elementary functions on whole vectors, kept in registers (no libm calls).

/// 2^x for x ≤ 0, the forward softmax's case (its arguments are differences from the running
/// max, never positive).
///
/// Inputs at and below -127, -inf included, give exactly +0: the clamp makes n = -127 and f = 0,
/// so p = 1 and adding -127 to 1.0's exponent field gives 0's bit pattern (so a masked score
/// gives P = 0 exactly, which the backward pass relies on). Inputs in (-127, -126) give a
/// positive value below 2^-126 (not 2^x, but far below any softmax term that matters).
///
/// NaN stays NaN: the clamp passes it (`v_max` returns its second operand when unordered), the
/// conversion to integer gives INT32_MIN, whose exponent increment is 0, and the polynomial of
/// NaN is NaN. (Rounding with the 1.5 · 2^23 trick instead would carry a NaN's payload bits into
/// the exponent and could turn it into a number.)
///
/// The polynomial is a degree-5 minimax fit of 2^f on [-0.5, 0.5] (relative error 9e-8; about
/// 2e-7 evaluated in float).
FA_INLINE fa_vf v_exp2_nonpositive(fa_vf x) {
  x = v_max(v_set1(-127.0f), x);
  fa_vi n = v_round_to_int(x);
  fa_vf f = v_sub(x, v_int_to_float(n));
  fa_vf p = v_set1(1.326469588093460e-3f);
  p = v_fma(p, f, v_set1(9.671508334577084e-3f));
  p = v_fma(p, f, v_set1(5.550733953714371e-2f));
  p = v_fma(p, f, v_set1(2.402224242687225e-1f));
  p = v_fma(p, f, v_set1(6.931470036506653e-1f));
  p = v_fma(p, f, v_set1(1.0f));
  return v_add_exponent(p, n);
}

/// 2^x for any x: `v_exp2_nonpositive` with inputs above 127 (+inf included) clamped to 127, so
/// an argument a little above 0 (rounding in the backward pass's `s − LSE`) is fine and no
/// argument overflows the exponent field. NaN stays NaN.
FA_INLINE fa_vf v_exp2(fa_vf x) { return v_exp2_nonpositive(v_min(v_set1(127.0f), x)); }

/// tanh(x) = sign(x) · (1 − 2 / (e^{2|x|} + 1)); absolute error about 1e-7; NaN stays NaN.
FA_INLINE fa_vf v_tanh(fa_vf x) {
  fa_vf e = v_exp2(v_mul(v_abs(x), v_set1(2.0f * 1.442695041f)));
  fa_vf t = v_sub(v_set1(1.0f), v_div(v_set1(2.0f), v_add(e, v_set1(1.0f))));
  return v_copysign(t, x);
}

static void FA_NAME(exp2_values)(const float *x, float *y, ptrdiff_t count) {
  ptrdiff_t i = 0;
  for (; i + FA_LANES <= count; i += FA_LANES) v_store(y + i, v_exp2(v_load(x + i)));
  if (i < count) {
    float in[FA_LANES] = {0}, out[FA_LANES];
    for (ptrdiff_t j = i; j < count; j++) in[j - i] = x[j];
    v_store(out, v_exp2(v_load(in)));
    for (ptrdiff_t j = i; j < count; j++) y[j] = out[j - i];
  }
}
