// Standard (materializing) attention's row softmax, the baseline the flash kernels are measured
// against; the same exponent rule as the flash forward (scores scaled first, the max subtracted
// exactly, the difference taken to base 2).

static float FA_NAME(standard_softmax_row)(
  float *row, ptrdiff_t padded, ptrdiff_t visible_low, ptrdiff_t visible_high, float scale) {
  if (visible_low >= visible_high) {
    memset(row, 0, (size_t)padded * 4);
    return -__builtin_inff();
  }
  for (ptrdiff_t i = 0; i < visible_low; i++) row[i] = -__builtin_inff();
  for (ptrdiff_t i = visible_high; i < padded; i++) row[i] = -__builtin_inff();
  const fa_vf unit = v_set1(scale), log2e = v_set1(1.4426950408889634f);
  fa_vf m = v_set1(-__builtin_inff());
  for (ptrdiff_t c = 0; c < padded; c += FA_LANES) {
    const fa_vf s = v_mul(v_load(row + c), unit);
    v_store(row + c, s);
    m = v_max(m, s);
  }
  const float row_max = v_reduce_max(m);
  const fa_vf reference = v_set1(row_max);
  fa_vf sum = v_zero();
  for (ptrdiff_t c = 0; c < padded; c += FA_LANES) {
    const fa_vf p = v_exp2_nonpositive(v_mul(v_sub(v_load(row + c), reference), log2e));
    v_store(row + c, p);
    sum = v_add(sum, p);
  }
  const float total = v_reduce_add(sum);
  const fa_vf inverse = v_set1(1.0f / total);
  for (ptrdiff_t c = 0; c < padded; c += FA_LANES) v_store(row + c, v_mul(v_load(row + c), inverse));
  return (float)((double)row_max + log((double)total));
}
