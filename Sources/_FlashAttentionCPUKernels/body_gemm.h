// The register-blocked products behind every GEMM of the CPU kernels.
//
// `C[r][n..<n+w] (+)= Σ_k A[r, k] · B[k][n..<n+w]` for 6 rows at a time: each step broadcasts 6
// scalars of A and loads two vectors of B, so the 6 × 2 accumulators are 12 registers (12 of the
// 16 ymm registers on x86-64-v3; 6 × 32 blocks on AVX-512, where 12 zmm chains keep two 512-bit
// FMA pipes of 4-cycle latency busy). On AVX-512 a last block of 16 columns runs on one vector
// per row. A has two strides, so one kernel reads a tile or its transpose (Kᵀ·Q, Pᵀ·V, dSᵀ·Q)
// without copying it.

enum { FA_ROW_BLOCK = 6 };

/// Columns of the block that starts at `column`: two vectors where they fit, else 16.
FA_INLINE ptrdiff_t FA_NAME(block_width)(ptrdiff_t column, ptrdiff_t columns) {
  return column + 2 * FA_LANES <= columns ? 2 * FA_LANES : 16;
}

/// Indices in `0..<limit` that any of the rows `first..<first + count` pairs with.
FA_INLINE void fa_band_range(
  const fa_band *band, ptrdiff_t first, ptrdiff_t count, ptrdiff_t limit, ptrdiff_t *lower, ptrdiff_t *upper) {
  ptrdiff_t lo = 0, hi = limit;
  if (band->enabled) {
    if (band->has_low && first + band->low > lo) lo = first + band->low;
    if (band->has_high && first + count + band->high < hi) hi = first + count + band->high;
  }
  if (lo >= hi) lo = hi = 0;
  *lower = lo;
  *upper = hi;
}

// A's six rows are read from two pointers three rows apart, each at offsets 0, a_row and
// 2 · a_row: x86 addressing covers those with one index register, so a step costs two pointer
// increments instead of one per row.
#define FA_A(i) ((i) < 3 ? a0[((i) % 3) * a_row] : a3[((i) % 3) * a_row])
#define FA_STEP2(i)                                  \
  {                                                  \
    fa_vf x = v_set1(FA_A(i));                       \
    c##i##0 = v_fma(x, b0, c##i##0);                 \
    c##i##1 = v_fma(x, b1, c##i##1);                 \
  }

/// One 6-row block of two vectors per row.
FA_INLINE void FA_NAME(block2)(
  ptrdiff_t depth, const float *a, ptrdiff_t a_row, ptrdiff_t a_k, const float *b, ptrdiff_t b_k,
  float *c, ptrdiff_t c_row, bool accumulate, float scale) {
  fa_vf c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    c00 = v_load(c), c01 = v_load(c + FA_LANES);
    c10 = v_load(c + c_row), c11 = v_load(c + c_row + FA_LANES);
    c20 = v_load(c + 2 * c_row), c21 = v_load(c + 2 * c_row + FA_LANES);
    c30 = v_load(c + 3 * c_row), c31 = v_load(c + 3 * c_row + FA_LANES);
    c40 = v_load(c + 4 * c_row), c41 = v_load(c + 4 * c_row + FA_LANES);
    c50 = v_load(c + 5 * c_row), c51 = v_load(c + 5 * c_row + FA_LANES);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = v_zero();
  }
  const float *a0 = a, *a3 = a + 3 * a_row;
  // Hides a3's relation to a0 from the optimizer, which would otherwise recompute a3 from a0
  // with two extra integer operations per step.
  __asm__("" : "+r"(a3));
  const float *bp = b;
  for (ptrdiff_t k = 0; k < depth; k++) {
    fa_vf b0 = v_load(bp), b1 = v_load(bp + FA_LANES);
    FA_STEP2(0) FA_STEP2(1) FA_STEP2(2) FA_STEP2(3) FA_STEP2(4) FA_STEP2(5)
    a0 += a_k;
    a3 += a_k;
    bp += b_k;
  }
  if (!accumulate && scale != 1.0f) {
    fa_vf s = v_set1(scale);
    c00 = v_mul(c00, s), c01 = v_mul(c01, s), c10 = v_mul(c10, s), c11 = v_mul(c11, s);
    c20 = v_mul(c20, s), c21 = v_mul(c21, s), c30 = v_mul(c30, s), c31 = v_mul(c31, s);
    c40 = v_mul(c40, s), c41 = v_mul(c41, s), c50 = v_mul(c50, s), c51 = v_mul(c51, s);
  }
  v_store(c, c00), v_store(c + FA_LANES, c01);
  v_store(c + c_row, c10), v_store(c + c_row + FA_LANES, c11);
  v_store(c + 2 * c_row, c20), v_store(c + 2 * c_row + FA_LANES, c21);
  v_store(c + 3 * c_row, c30), v_store(c + 3 * c_row + FA_LANES, c31);
  v_store(c + 4 * c_row, c40), v_store(c + 4 * c_row + FA_LANES, c41);
  v_store(c + 5 * c_row, c50), v_store(c + 5 * c_row + FA_LANES, c51);
}
#undef FA_STEP2

#if FA_LANES == 16
#define FA_STEP1(i) c##i = v_fma(v_set1(FA_A(i)), b0, c##i);

/// AVX-512's last 16 columns: one vector per row.
FA_INLINE void FA_NAME(block1)(
  ptrdiff_t depth, const float *a, ptrdiff_t a_row, ptrdiff_t a_k, const float *b, ptrdiff_t b_k,
  float *c, ptrdiff_t c_row, bool accumulate, float scale) {
  fa_vf c0, c1, c2, c3, c4, c5;
  if (accumulate) {
    c0 = v_load(c), c1 = v_load(c + c_row), c2 = v_load(c + 2 * c_row);
    c3 = v_load(c + 3 * c_row), c4 = v_load(c + 4 * c_row), c5 = v_load(c + 5 * c_row);
  } else {
    c0 = c1 = c2 = c3 = c4 = c5 = v_zero();
  }
  const float *a0 = a, *a3 = a + 3 * a_row;
  // Hides a3's relation to a0 from the optimizer, which would otherwise recompute a3 from a0
  // with two extra integer operations per step.
  __asm__("" : "+r"(a3));
  const float *bp = b;
  for (ptrdiff_t k = 0; k < depth; k++) {
    fa_vf b0 = v_load(bp);
    FA_STEP1(0) FA_STEP1(1) FA_STEP1(2) FA_STEP1(3) FA_STEP1(4) FA_STEP1(5)
    a0 += a_k;
    a3 += a_k;
    bp += b_k;
  }
  if (!accumulate && scale != 1.0f) {
    fa_vf s = v_set1(scale);
    c0 = v_mul(c0, s), c1 = v_mul(c1, s), c2 = v_mul(c2, s);
    c3 = v_mul(c3, s), c4 = v_mul(c4, s), c5 = v_mul(c5, s);
  }
  v_store(c, c0), v_store(c + c_row, c1), v_store(c + 2 * c_row, c2);
  v_store(c + 3 * c_row, c3), v_store(c + 4 * c_row, c4), v_store(c + 5 * c_row, c5);
}
#undef FA_STEP1
#endif
#undef FA_A

static void FA_NAME(gemm)(const fa_gemm *g) {
  const bool banded = g->column_band.enabled || g->depth_band.enabled;
  for (ptrdiff_t column = 0; column < g->columns;) {
    const ptrdiff_t width = FA_NAME(block_width)(column, g->columns);
    const float *b = g->b_panels > 0 ? g->b + column * g->b_panels : g->b + column;
    const ptrdiff_t b_k = g->b_panels > 0 ? width : g->b_k;
    for (ptrdiff_t row = 0; row < g->rows; row += FA_ROW_BLOCK) {
      ptrdiff_t first = 0, last = g->depth;
      if (banded) {
        ptrdiff_t lower, upper;
        fa_band_range(&g->column_band, row, FA_ROW_BLOCK, g->columns, &lower, &upper);
        if (column + width <= lower || column >= upper) continue;
        fa_band_range(&g->depth_band, row, FA_ROW_BLOCK, g->depth, &first, &last);
      }
      const float *a = g->a + row * g->a_row + first * g->a_k;
      float *c = g->c + row * g->c_row + column;
#if FA_LANES == 16
      if (width == 16) {
        FA_NAME(block1)(last - first, a, g->a_row, g->a_k, b + first * b_k, b_k, c, g->c_row, g->accumulate, g->scale);
        continue;
      }
#endif
      FA_NAME(block2)(last - first, a, g->a_row, g->a_k, b + first * b_k, b_k, c, g->c_row, g->accumulate, g->scale);
    }
    column += width;
  }
}
