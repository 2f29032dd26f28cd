// The vector layer of the x86-64-v3 build: 8 floats per ymm register. kernel_body.h is written
// against these names only; vector_avx512.h defines the same names for zmm registers.
//
// Every function here is compiled with the target attribute that kernels_avx2.c pushes.

#define FA_LANES 8
#define FA_NAME(name) name##_avx2

typedef __m256 fa_vf;
typedef __m256i fa_vi;

#define FA_INLINE static inline __attribute__((always_inline))

FA_INLINE fa_vf v_load(const float *p) { return _mm256_loadu_ps(p); }
FA_INLINE void v_store(float *p, fa_vf x) { _mm256_storeu_ps(p, x); }
FA_INLINE fa_vf v_set1(float x) { return _mm256_set1_ps(x); }
FA_INLINE fa_vf v_zero(void) { return _mm256_setzero_ps(); }
/// a · b + c, one rounding.
FA_INLINE fa_vf v_fma(fa_vf a, fa_vf b, fa_vf c) { return _mm256_fmadd_ps(a, b, c); }
FA_INLINE fa_vf v_add(fa_vf a, fa_vf b) { return _mm256_add_ps(a, b); }
FA_INLINE fa_vf v_sub(fa_vf a, fa_vf b) { return _mm256_sub_ps(a, b); }
FA_INLINE fa_vf v_mul(fa_vf a, fa_vf b) { return _mm256_mul_ps(a, b); }
FA_INLINE fa_vf v_div(fa_vf a, fa_vf b) { return _mm256_div_ps(a, b); }
/// max(a, x), and x where x is NaN (`maxps` returns its second operand when unordered).
FA_INLINE fa_vf v_max(fa_vf a, fa_vf x) { return _mm256_max_ps(a, x); }
/// min(a, x), and x where x is NaN.
FA_INLINE fa_vf v_min(fa_vf a, fa_vf x) { return _mm256_min_ps(a, x); }
/// `replacement` where `x == value`, else x.
FA_INLINE fa_vf v_replace_equal(fa_vf x, fa_vf value, fa_vf replacement) {
  return _mm256_blendv_ps(x, replacement, _mm256_cmp_ps(x, value, _CMP_EQ_OQ));
}
/// Whether any lane of a differs from the same lane of b (NaN differs from everything).
FA_INLINE bool v_any_not_equal(fa_vf a, fa_vf b) {
  return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_NEQ_UQ)) != 0;
}
/// 0 where `test` is 0, else x (NaN in `test` counts as not 0).
FA_INLINE fa_vf v_zero_where_zero(fa_vf x, fa_vf test) {
  return _mm256_andnot_ps(_mm256_cmp_ps(test, _mm256_setzero_ps(), _CMP_EQ_OQ), x);
}
FA_INLINE fa_vf v_abs(fa_vf x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
/// |magnitude| with the sign of `sign`.
FA_INLINE fa_vf v_copysign(fa_vf magnitude, fa_vf sign) {
  fa_vf bit = _mm256_set1_ps(-0.0f);
  return _mm256_or_ps(_mm256_andnot_ps(bit, magnitude), _mm256_and_ps(bit, sign));
}
/// Round to nearest integer (NaN and out-of-range give INT32_MIN).
FA_INLINE fa_vi v_round_to_int(fa_vf x) { return _mm256_cvtps_epi32(x); }
FA_INLINE fa_vf v_int_to_float(fa_vi n) { return _mm256_cvtepi32_ps(n); }
/// x · 2^n by adding n to the exponent field (no check for overflow or underflow).
FA_INLINE fa_vf v_add_exponent(fa_vf x, fa_vi n) {
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(x), _mm256_slli_epi32(n, 23)));
}
FA_INLINE float v_reduce_add(fa_vf x) {
  __m128 half = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  return _mm_cvtss_f32(half);
}
/// The largest lane; NaN when a lane is NaN.
FA_INLINE float v_reduce_max(fa_vf x) {
  float lanes[FA_LANES];
  v_store(lanes, x);
  float best = lanes[0];
  for (int i = 1; i < FA_LANES; i++) best = (lanes[i] > best || lanes[i] != lanes[i]) ? lanes[i] : best;
  return best;
}

// Storage conversions (F16C for fp16; bf16 is the upper half of a float32).
FA_INLINE fa_vf v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
FA_INLINE void v_store_f16(uint16_t *p, fa_vf x) {
  _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
FA_INLINE fa_vf v_load_bf16(const uint16_t *p) {
  __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
/// Round to nearest even; NaN stays a quiet NaN (BFloat16Conversion's rule).
FA_INLINE void v_store_bf16(uint16_t *p, fa_vf x) {
  __m256i bits = _mm256_castps_si256(x);
  __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
  __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  __m256i result = _mm256_blendv_epi8(rounded, quiet, nan);
  // 32-bit lanes to 16-bit: packus works within 128-bit halves, then the halves are joined.
  __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, result), 0xD8);
  _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(packed));
}
