// Moving rows between tensors (fp32, fp16, bf16 storage) and the kernels' float32 tiles.

FA_INLINE ptrdiff_t fa_dtype_size(int32_t dtype) { return dtype == FA_DTYPE_F32 ? 4 : 2; }

FA_INLINE const void *fa_row(const fa_rows *rows, ptrdiff_t row) {
  return (const char *)rows->base + row * rows->row_stride * fa_dtype_size(rows->dtype);
}

FA_INLINE float fa_scalar_from(const void *row, int32_t dtype, ptrdiff_t i) {
  switch (dtype) {
  case FA_DTYPE_F16: return _cvtsh_ss(((const uint16_t *)row)[i]);
  case FA_DTYPE_BF16: {
    uint32_t bits = (uint32_t)((const uint16_t *)row)[i] << 16;
    float value;
    memcpy(&value, &bits, 4);
    return value;
  }
  default: return ((const float *)row)[i];
  }
}

FA_INLINE void fa_scalar_to(void *row, int32_t dtype, ptrdiff_t i, float value) {
  switch (dtype) {
  case FA_DTYPE_F16: ((uint16_t *)row)[i] = _cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); break;
  case FA_DTYPE_BF16: {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    ((uint16_t *)row)[i] = value != value ? (uint16_t)((bits >> 16) | 0x40)
                                          : (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    break;
  }
  default: ((float *)row)[i] = value;
  }
}

/// Lanes `i..<i + FA_LANES` of a row, widened to float32.
FA_INLINE fa_vf fa_vector_from(const void *row, int32_t dtype, ptrdiff_t i) {
  switch (dtype) {
  case FA_DTYPE_F16: return v_load_f16((const uint16_t *)row + i);
  case FA_DTYPE_BF16: return v_load_bf16((const uint16_t *)row + i);
  default: return v_load((const float *)row + i);
  }
}

FA_INLINE void fa_vector_to(void *row, int32_t dtype, ptrdiff_t i, fa_vf value) {
  switch (dtype) {
  case FA_DTYPE_F16: v_store_f16((uint16_t *)row + i, value); break;
  case FA_DTYPE_BF16: v_store_bf16((uint16_t *)row + i, value); break;
  default: v_store((float *)row + i, value);
  }
}

/// `width` elements of a stored row into float32.
FA_INLINE void fa_widen(const void *row, int32_t dtype, ptrdiff_t width, float *target) {
  ptrdiff_t i = 0;
  for (; i + FA_LANES <= width; i += FA_LANES) v_store(target + i, fa_vector_from(row, dtype, i));
  for (; i < width; i++) target[i] = fa_scalar_from(row, dtype, i);
}

static void FA_NAME(store_row)(const fa_rows *rows, ptrdiff_t row, const float *source) {
  void *target = (void *)fa_row(rows, row);
  ptrdiff_t i = 0;
  for (; i + FA_LANES <= rows->width; i += FA_LANES) fa_vector_to(target, rows->dtype, i, v_load(source + i));
  for (; i < rows->width; i++) fa_scalar_to(target, rows->dtype, i, source[i]);
}

static void FA_NAME(store_rows)(
  const fa_rows *rows, ptrdiff_t start, ptrdiff_t count, const float *source, ptrdiff_t leading) {
  for (ptrdiff_t r = 0; r < count; r++) FA_NAME(store_row)(rows, start + r, source + r * leading);
}

static void FA_NAME(pack_rows)(
  const fa_rows *rows, ptrdiff_t start, ptrdiff_t count, ptrdiff_t padded_rows, float *destination,
  ptrdiff_t leading) {
  const ptrdiff_t width = rows->width;
  for (ptrdiff_t r = 0; r < count; r++) {
    float *target = destination + r * leading;
    fa_widen(fa_row(rows, start + r), rows->dtype, width, target);
    for (ptrdiff_t c = width; c < leading; c++) target[c] = 0;
  }
  if (padded_rows > count) memset(destination + count * leading, 0, (size_t)((padded_rows - count) * leading) * 4);
}

static void FA_NAME(pack_transposed)(
  const fa_rows *rows, ptrdiff_t start, ptrdiff_t count, ptrdiff_t padded_rows, float *destination,
  ptrdiff_t leading) {
  const ptrdiff_t width = rows->width;
  // Blocks of FA_LANES columns: each row's block is widened once (a vector load and, for fp16 or
  // bf16, a vector conversion), then scattered down the destination's columns.
  for (ptrdiff_t c = 0; c < width; c += FA_LANES) {
    const ptrdiff_t n = width - c < FA_LANES ? width - c : FA_LANES;
    for (ptrdiff_t r = 0; r < count; r++) {
      const void *source = fa_row(rows, start + r);
      float lanes[FA_LANES];
      if (n == FA_LANES) {
        v_store(lanes, fa_vector_from(source, rows->dtype, c));
      } else {
        for (ptrdiff_t i = 0; i < n; i++) lanes[i] = fa_scalar_from(source, rows->dtype, c + i);
      }
      for (ptrdiff_t i = 0; i < n; i++) destination[(c + i) * leading + r] = lanes[i];
    }
    for (ptrdiff_t i = 0; i < n; i++) {
      for (ptrdiff_t r = count; r < padded_rows; r++) destination[(c + i) * leading + r] = 0;
    }
  }
}

static void FA_NAME(pack_panels)(
  const fa_rows *rows, ptrdiff_t start, ptrdiff_t count, float *destination, ptrdiff_t row_capacity) {
  const ptrdiff_t width = rows->width;
  for (ptrdiff_t r = 0; r < count; r++) {
    const float *source = (const float *)fa_row(rows, start + r);
    for (ptrdiff_t column = 0; column < width;) {
      const ptrdiff_t panel = FA_NAME(block_width)(column, width);
      float *target = destination + column * row_capacity + r * panel;
      for (ptrdiff_t i = 0; i < panel; i += FA_LANES) v_store(target + i, v_load(source + column + i));
      column += panel;
    }
  }
}

/// Eight lanes of a row from element `i`, widened to float32 (ymm in both builds: the transposes
/// below are written for 8 × 8 blocks).
FA_INLINE __m256 fa_load8(const void *row, int32_t dtype, ptrdiff_t i) {
  switch (dtype) {
  case FA_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
  case FA_DTYPE_BF16: {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  default: return _mm256_loadu_ps((const float *)row + i);
  }
}

/// Transposes the 8 × 8 block in r[0..<8] in place.
FA_INLINE void fa_transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// `destination[r] = Σ_c a[r][c] · b[r][c]` summed exactly as the GEMM sums a product's element:
/// one fused multiply-add per column, in column order, from 0. The backward pass's D =
/// rowsum(dO ∘ O) then equals the product dP = dO · v bit for bit where O is one value row v (a
/// softmax that has become one-hot at large scores), so dS = P · (dP − D) is exactly 0 there, as
/// the exact gradient is, instead of rounding noise times the scale. Eight rows at a time run as
/// the lanes of one vector (8 × 8 blocks transposed in registers).
static void FA_NAME(row_dot)(
  const fa_rows *a, const fa_rows *b, ptrdiff_t start, ptrdiff_t count, float *destination) {
  const ptrdiff_t width = a->width, full = width / 8 * 8;
  ptrdiff_t r = 0;
  for (; r + 8 <= count; r += 8) {
    const void *x[8], *y[8];
    for (int i = 0; i < 8; i++) x[i] = fa_row(a, start + r + i), y[i] = fa_row(b, start + r + i);
    __m256 sum = _mm256_setzero_ps();
    for (ptrdiff_t c = 0; c < full; c += 8) {
      __m256 xs[8], ys[8];
      for (int i = 0; i < 8; i++) xs[i] = fa_load8(x[i], a->dtype, c), ys[i] = fa_load8(y[i], b->dtype, c);
      fa_transpose8(xs);
      fa_transpose8(ys);
      for (int k = 0; k < 8; k++) sum = _mm256_fmadd_ps(xs[k], ys[k], sum);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    for (int i = 0; i < 8; i++) {
      for (ptrdiff_t c = full; c < width; c++) {
        lanes[i] = __builtin_fmaf(fa_scalar_from(x[i], a->dtype, c), fa_scalar_from(y[i], b->dtype, c), lanes[i]);
      }
      destination[r + i] = lanes[i];
    }
  }
  for (; r < count; r++) {
    const void *x = fa_row(a, start + r), *y = fa_row(b, start + r);
    float total = 0;
    for (ptrdiff_t c = 0; c < width; c++) {
      total = __builtin_fmaf(fa_scalar_from(x, a->dtype, c), fa_scalar_from(y, b->dtype, c), total);
    }
    destination[r] = total;
  }
}

static void FA_NAME(add_rows)(
  float *destination, ptrdiff_t destination_stride, const float *source, ptrdiff_t source_leading,
  ptrdiff_t count, ptrdiff_t width) {
  for (ptrdiff_t r = 0; r < count; r++) {
    float *target = destination + r * destination_stride;
    const float *from = source + r * source_leading;
    ptrdiff_t i = 0;
    for (; i + FA_LANES <= width; i += FA_LANES) v_store(target + i, v_add(v_load(target + i), v_load(from + i)));
    for (; i < width; i++) target[i] += from[i];
  }
}
