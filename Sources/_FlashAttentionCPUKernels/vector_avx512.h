// The vector layer of the x86-64-v4 build: 16 floats per zmm register, the same names as
// vector_avx2.h. With 32 registers the GEMM runs 6 × 32 blocks (12 accumulators: two 512-bit
// FMA pipes of 4-cycle latency need at least 8 independent chains).
//
// Every function here is compiled with the target attribute that kernels_avx512.c pushes.

#define FA_LANES 16
#define FA_NAME(name) name##_avx512

typedef __m512 fa_vf;
typedef __m512i fa_vi;

#define FA_INLINE static inline __attribute__((always_inline))

FA_INLINE fa_vf v_load(const float *p) { return _mm512_loadu_ps(p); }
FA_INLINE void v_store(float *p, fa_vf x) { _mm512_storeu_ps(p, x); }
FA_INLINE fa_vf v_set1(float x) { return _mm512_set1_ps(x); }
FA_INLINE fa_vf v_zero(void) { return _mm512_setzero_ps(); }
FA_INLINE fa_vf v_fma(fa_vf a, fa_vf b, fa_vf c) { return _mm512_fmadd_ps(a, b, c); }
FA_INLINE fa_vf v_add(fa_vf a, fa_vf b) { return _mm512_add_ps(a, b); }
FA_INLINE fa_vf v_sub(fa_vf a, fa_vf b) { return _mm512_sub_ps(a, b); }
FA_INLINE fa_vf v_mul(fa_vf a, fa_vf b) { return _mm512_mul_ps(a, b); }
FA_INLINE fa_vf v_div(fa_vf a, fa_vf b) { return _mm512_div_ps(a, b); }
FA_INLINE fa_vf v_max(fa_vf a, fa_vf x) { return _mm512_max_ps(a, x); }
FA_INLINE fa_vf v_min(fa_vf a, fa_vf x) { return _mm512_min_ps(a, x); }
FA_INLINE fa_vf v_replace_equal(fa_vf x, fa_vf value, fa_vf replacement) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, value, _CMP_EQ_OQ), x, replacement);
}
FA_INLINE bool v_any_not_equal(fa_vf a, fa_vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ) != 0; }
FA_INLINE fa_vf v_zero_where_zero(fa_vf x, fa_vf test) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(test, _mm512_setzero_ps(), _CMP_NEQ_UQ), x);
}
FA_INLINE fa_vf v_abs(fa_vf x) { return _mm512_abs_ps(x); }
FA_INLINE fa_vf v_copysign(fa_vf magnitude, fa_vf sign) {
  fa_vf bit = _mm512_set1_ps(-0.0f);
  return _mm512_or_ps(_mm512_andnot_ps(bit, magnitude), _mm512_and_ps(bit, sign));
}
FA_INLINE fa_vi v_round_to_int(fa_vf x) { return _mm512_cvtps_epi32(x); }
FA_INLINE fa_vf v_int_to_float(fa_vi n) { return _mm512_cvtepi32_ps(n); }
FA_INLINE fa_vf v_add_exponent(fa_vf x, fa_vi n) {
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(x), _mm512_slli_epi32(n, 23)));
}
FA_INLINE float v_reduce_add(fa_vf x) { return _mm512_reduce_add_ps(x); }
FA_INLINE float v_reduce_max(fa_vf x) {
  float lanes[FA_LANES];
  v_store(lanes, x);
  float best = lanes[0];
  for (int i = 1; i < FA_LANES; i++) best = (lanes[i] > best || lanes[i] != lanes[i]) ? lanes[i] : best;
  return best;
}

FA_INLINE fa_vf v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
FA_INLINE void v_store_f16(uint16_t *p, fa_vf x) {
  _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
FA_INLINE fa_vf v_load_bf16(const uint16_t *p) {
  __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
FA_INLINE void v_store_bf16(uint16_t *p, fa_vf x) {
  __m512i bits = _mm512_castps_si512(x);
  __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
  __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  __m512i result = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, quiet);
  _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(result));
}
