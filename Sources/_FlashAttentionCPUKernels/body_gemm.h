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

// The 6-row blocks, in inline assembly: SwiftPM compiles a package's C at -O0 in debug builds
// (and a dependency's too), where these loops written with intrinsics would keep the
// accumulators in memory and run 30-40 times slower; written out, the inner loop is the same
// instructions at every optimization level (those clang -O2 emits for the intrinsics version:
// two B loads, six broadcasts of A, 12 FMAs, three pointer increments per step). A's six rows
// are read from two pointers three rows apart, each at offsets 0, a_row and 2 · a_row, which one
// index register covers; C's rows likewise.

#if FA_LANES == 16
/// One 6-row block of 32 columns (two zmm vectors per row, 12 accumulators).
FA_INLINE void FA_NAME(block2)(
  ptrdiff_t depth, const float *a, ptrdiff_t a_row, ptrdiff_t a_k, const float *b, ptrdiff_t b_k,
  float *c, ptrdiff_t c_row, bool accumulate, float scale) {
  const float *a0 = a, *a3 = a + 3 * a_row, *bp = b;
  float *c3 = c + 3 * c_row;
  const ptrdiff_t a_row_bytes = a_row * 4, a_k_bytes = a_k * 4, b_k_bytes = b_k * 4, c_row_bytes = c_row * 4;
  // 2: accumulate into C; 1: overwrite C with scale · A·B; 0: overwrite C with A·B.
  const ptrdiff_t mode = accumulate ? 2 : scale != 1.0f ? 1 : 0;
  __asm__ volatile(
    "cmp $2, %[mode]\n"
    "jne 10f\n"
    "vmovups (%[c0]), %%zmm0\n"
    "vmovups 64(%[c0]), %%zmm1\n"
    "vmovups (%[c0],%[cr],1), %%zmm2\n"
    "vmovups 64(%[c0],%[cr],1), %%zmm3\n"
    "vmovups (%[c0],%[cr],2), %%zmm4\n"
    "vmovups 64(%[c0],%[cr],2), %%zmm5\n"
    "vmovups (%[c3]), %%zmm6\n"
    "vmovups 64(%[c3]), %%zmm7\n"
    "vmovups (%[c3],%[cr],1), %%zmm8\n"
    "vmovups 64(%[c3],%[cr],1), %%zmm9\n"
    "vmovups (%[c3],%[cr],2), %%zmm10\n"
    "vmovups 64(%[c3],%[cr],2), %%zmm11\n"
    "jmp 11f\n"
    "10:\n"
    "vpxord %%zmm0, %%zmm0, %%zmm0\n"
    "vpxord %%zmm1, %%zmm1, %%zmm1\n"
    "vpxord %%zmm2, %%zmm2, %%zmm2\n"
    "vpxord %%zmm3, %%zmm3, %%zmm3\n"
    "vpxord %%zmm4, %%zmm4, %%zmm4\n"
    "vpxord %%zmm5, %%zmm5, %%zmm5\n"
    "vpxord %%zmm6, %%zmm6, %%zmm6\n"
    "vpxord %%zmm7, %%zmm7, %%zmm7\n"
    "vpxord %%zmm8, %%zmm8, %%zmm8\n"
    "vpxord %%zmm9, %%zmm9, %%zmm9\n"
    "vpxord %%zmm10, %%zmm10, %%zmm10\n"
    "vpxord %%zmm11, %%zmm11, %%zmm11\n"
    "11:\n"
    "test %[n], %[n]\n"
    "jle 13f\n"
    "12:\n"
    "vmovups (%[b]), %%zmm12\n"
    "vmovups 64(%[b]), %%zmm13\n"
    "vbroadcastss (%[a0]), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm0\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm1\n"
    "vbroadcastss (%[a0],%[ar],1), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm2\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm3\n"
    "vbroadcastss (%[a0],%[ar],2), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm4\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm5\n"
    "vbroadcastss (%[a3]), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm6\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm7\n"
    "vbroadcastss (%[a3],%[ar],1), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm8\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm9\n"
    "vbroadcastss (%[a3],%[ar],2), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm10\n"
    "vfmadd231ps %%zmm14, %%zmm13, %%zmm11\n"
    "add %[ak], %[a0]\n"
    "add %[ak], %[a3]\n"
    "add %[bk], %[b]\n"
    "dec %[n]\n"
    "jnz 12b\n"
    "13:\n"
    "cmp $1, %[mode]\n"
    "jne 14f\n"
    "vbroadcastss %[scale], %%zmm14\n"
    "vmulps %%zmm14, %%zmm0, %%zmm0\n"
    "vmulps %%zmm14, %%zmm1, %%zmm1\n"
    "vmulps %%zmm14, %%zmm2, %%zmm2\n"
    "vmulps %%zmm14, %%zmm3, %%zmm3\n"
    "vmulps %%zmm14, %%zmm4, %%zmm4\n"
    "vmulps %%zmm14, %%zmm5, %%zmm5\n"
    "vmulps %%zmm14, %%zmm6, %%zmm6\n"
    "vmulps %%zmm14, %%zmm7, %%zmm7\n"
    "vmulps %%zmm14, %%zmm8, %%zmm8\n"
    "vmulps %%zmm14, %%zmm9, %%zmm9\n"
    "vmulps %%zmm14, %%zmm10, %%zmm10\n"
    "vmulps %%zmm14, %%zmm11, %%zmm11\n"
    "14:\n"
    "vmovups %%zmm0, (%[c0])\n"
    "vmovups %%zmm1, 64(%[c0])\n"
    "vmovups %%zmm2, (%[c0],%[cr],1)\n"
    "vmovups %%zmm3, 64(%[c0],%[cr],1)\n"
    "vmovups %%zmm4, (%[c0],%[cr],2)\n"
    "vmovups %%zmm5, 64(%[c0],%[cr],2)\n"
    "vmovups %%zmm6, (%[c3])\n"
    "vmovups %%zmm7, 64(%[c3])\n"
    "vmovups %%zmm8, (%[c3],%[cr],1)\n"
    "vmovups %%zmm9, 64(%[c3],%[cr],1)\n"
    "vmovups %%zmm10, (%[c3],%[cr],2)\n"
    "vmovups %%zmm11, 64(%[c3],%[cr],2)\n"
    : [a0] "+r"(a0), [a3] "+r"(a3), [b] "+r"(bp), [n] "+r"(depth)
    : [ar] "r"(a_row_bytes), [ak] "r"(a_k_bytes), [bk] "r"(b_k_bytes), [c0] "r"(c), [c3] "r"(c3),
      [cr] "r"(c_row_bytes), [mode] "r"(mode), [scale] "m"(scale)
    : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "cc", "memory");
}

/// AVX-512's last 16 columns: one zmm vector per row.
FA_INLINE void FA_NAME(block1)(
  ptrdiff_t depth, const float *a, ptrdiff_t a_row, ptrdiff_t a_k, const float *b, ptrdiff_t b_k,
  float *c, ptrdiff_t c_row, bool accumulate, float scale) {
  const float *a0 = a, *a3 = a + 3 * a_row, *bp = b;
  float *c3 = c + 3 * c_row;
  const ptrdiff_t a_row_bytes = a_row * 4, a_k_bytes = a_k * 4, b_k_bytes = b_k * 4, c_row_bytes = c_row * 4;
  // 2: accumulate into C; 1: overwrite C with scale · A·B; 0: overwrite C with A·B.
  const ptrdiff_t mode = accumulate ? 2 : scale != 1.0f ? 1 : 0;
  __asm__ volatile(
    "cmp $2, %[mode]\n"
    "jne 10f\n"
    "vmovups (%[c0]), %%zmm0\n"
    "vmovups (%[c0],%[cr],1), %%zmm1\n"
    "vmovups (%[c0],%[cr],2), %%zmm2\n"
    "vmovups (%[c3]), %%zmm3\n"
    "vmovups (%[c3],%[cr],1), %%zmm4\n"
    "vmovups (%[c3],%[cr],2), %%zmm5\n"
    "jmp 11f\n"
    "10:\n"
    "vpxord %%zmm0, %%zmm0, %%zmm0\n"
    "vpxord %%zmm1, %%zmm1, %%zmm1\n"
    "vpxord %%zmm2, %%zmm2, %%zmm2\n"
    "vpxord %%zmm3, %%zmm3, %%zmm3\n"
    "vpxord %%zmm4, %%zmm4, %%zmm4\n"
    "vpxord %%zmm5, %%zmm5, %%zmm5\n"
    "11:\n"
    "test %[n], %[n]\n"
    "jle 13f\n"
    "12:\n"
    "vmovups (%[b]), %%zmm12\n"
    "vbroadcastss (%[a0]), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm0\n"
    "vbroadcastss (%[a0],%[ar],1), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm1\n"
    "vbroadcastss (%[a0],%[ar],2), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm2\n"
    "vbroadcastss (%[a3]), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm3\n"
    "vbroadcastss (%[a3],%[ar],1), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm4\n"
    "vbroadcastss (%[a3],%[ar],2), %%zmm14\n"
    "vfmadd231ps %%zmm14, %%zmm12, %%zmm5\n"
    "add %[ak], %[a0]\n"
    "add %[ak], %[a3]\n"
    "add %[bk], %[b]\n"
    "dec %[n]\n"
    "jnz 12b\n"
    "13:\n"
    "cmp $1, %[mode]\n"
    "jne 14f\n"
    "vbroadcastss %[scale], %%zmm14\n"
    "vmulps %%zmm14, %%zmm0, %%zmm0\n"
    "vmulps %%zmm14, %%zmm1, %%zmm1\n"
    "vmulps %%zmm14, %%zmm2, %%zmm2\n"
    "vmulps %%zmm14, %%zmm3, %%zmm3\n"
    "vmulps %%zmm14, %%zmm4, %%zmm4\n"
    "vmulps %%zmm14, %%zmm5, %%zmm5\n"
    "14:\n"
    "vmovups %%zmm0, (%[c0])\n"
    "vmovups %%zmm1, (%[c0],%[cr],1)\n"
    "vmovups %%zmm2, (%[c0],%[cr],2)\n"
    "vmovups %%zmm3, (%[c3])\n"
    "vmovups %%zmm4, (%[c3],%[cr],1)\n"
    "vmovups %%zmm5, (%[c3],%[cr],2)\n"
    : [a0] "+r"(a0), [a3] "+r"(a3), [b] "+r"(bp), [n] "+r"(depth)
    : [ar] "r"(a_row_bytes), [ak] "r"(a_k_bytes), [bk] "r"(b_k_bytes), [c0] "r"(c), [c3] "r"(c3),
      [cr] "r"(c_row_bytes), [mode] "r"(mode), [scale] "m"(scale)
    : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "cc", "memory");
}
#else
/// One 6-row block of 16 columns (two ymm vectors per row, 12 of the 16 ymm registers).
FA_INLINE void FA_NAME(block2)(
  ptrdiff_t depth, const float *a, ptrdiff_t a_row, ptrdiff_t a_k, const float *b, ptrdiff_t b_k,
  float *c, ptrdiff_t c_row, bool accumulate, float scale) {
  const float *a0 = a, *a3 = a + 3 * a_row, *bp = b;
  float *c3 = c + 3 * c_row;
  const ptrdiff_t a_row_bytes = a_row * 4, a_k_bytes = a_k * 4, b_k_bytes = b_k * 4, c_row_bytes = c_row * 4;
  // 2: accumulate into C; 1: overwrite C with scale · A·B; 0: overwrite C with A·B.
  const ptrdiff_t mode = accumulate ? 2 : scale != 1.0f ? 1 : 0;
  __asm__ volatile(
    "cmp $2, %[mode]\n"
    "jne 10f\n"
    "vmovups (%[c0]), %%ymm0\n"
    "vmovups 32(%[c0]), %%ymm1\n"
    "vmovups (%[c0],%[cr],1), %%ymm2\n"
    "vmovups 32(%[c0],%[cr],1), %%ymm3\n"
    "vmovups (%[c0],%[cr],2), %%ymm4\n"
    "vmovups 32(%[c0],%[cr],2), %%ymm5\n"
    "vmovups (%[c3]), %%ymm6\n"
    "vmovups 32(%[c3]), %%ymm7\n"
    "vmovups (%[c3],%[cr],1), %%ymm8\n"
    "vmovups 32(%[c3],%[cr],1), %%ymm9\n"
    "vmovups (%[c3],%[cr],2), %%ymm10\n"
    "vmovups 32(%[c3],%[cr],2), %%ymm11\n"
    "jmp 11f\n"
    "10:\n"
    "vpxor %%ymm0, %%ymm0, %%ymm0\n"
    "vpxor %%ymm1, %%ymm1, %%ymm1\n"
    "vpxor %%ymm2, %%ymm2, %%ymm2\n"
    "vpxor %%ymm3, %%ymm3, %%ymm3\n"
    "vpxor %%ymm4, %%ymm4, %%ymm4\n"
    "vpxor %%ymm5, %%ymm5, %%ymm5\n"
    "vpxor %%ymm6, %%ymm6, %%ymm6\n"
    "vpxor %%ymm7, %%ymm7, %%ymm7\n"
    "vpxor %%ymm8, %%ymm8, %%ymm8\n"
    "vpxor %%ymm9, %%ymm9, %%ymm9\n"
    "vpxor %%ymm10, %%ymm10, %%ymm10\n"
    "vpxor %%ymm11, %%ymm11, %%ymm11\n"
    "11:\n"
    "test %[n], %[n]\n"
    "jle 13f\n"
    "12:\n"
    "vmovups (%[b]), %%ymm12\n"
    "vmovups 32(%[b]), %%ymm13\n"
    "vbroadcastss (%[a0]), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm0\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm1\n"
    "vbroadcastss (%[a0],%[ar],1), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm2\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm3\n"
    "vbroadcastss (%[a0],%[ar],2), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm4\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm5\n"
    "vbroadcastss (%[a3]), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm6\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm7\n"
    "vbroadcastss (%[a3],%[ar],1), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm8\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm9\n"
    "vbroadcastss (%[a3],%[ar],2), %%ymm14\n"
    "vfmadd231ps %%ymm14, %%ymm12, %%ymm10\n"
    "vfmadd231ps %%ymm14, %%ymm13, %%ymm11\n"
    "add %[ak], %[a0]\n"
    "add %[ak], %[a3]\n"
    "add %[bk], %[b]\n"
    "dec %[n]\n"
    "jnz 12b\n"
    "13:\n"
    "cmp $1, %[mode]\n"
    "jne 14f\n"
    "vbroadcastss %[scale], %%ymm14\n"
    "vmulps %%ymm14, %%ymm0, %%ymm0\n"
    "vmulps %%ymm14, %%ymm1, %%ymm1\n"
    "vmulps %%ymm14, %%ymm2, %%ymm2\n"
    "vmulps %%ymm14, %%ymm3, %%ymm3\n"
    "vmulps %%ymm14, %%ymm4, %%ymm4\n"
    "vmulps %%ymm14, %%ymm5, %%ymm5\n"
    "vmulps %%ymm14, %%ymm6, %%ymm6\n"
    "vmulps %%ymm14, %%ymm7, %%ymm7\n"
    "vmulps %%ymm14, %%ymm8, %%ymm8\n"
    "vmulps %%ymm14, %%ymm9, %%ymm9\n"
    "vmulps %%ymm14, %%ymm10, %%ymm10\n"
    "vmulps %%ymm14, %%ymm11, %%ymm11\n"
    "14:\n"
    "vmovups %%ymm0, (%[c0])\n"
    "vmovups %%ymm1, 32(%[c0])\n"
    "vmovups %%ymm2, (%[c0],%[cr],1)\n"
    "vmovups %%ymm3, 32(%[c0],%[cr],1)\n"
    "vmovups %%ymm4, (%[c0],%[cr],2)\n"
    "vmovups %%ymm5, 32(%[c0],%[cr],2)\n"
    "vmovups %%ymm6, (%[c3])\n"
    "vmovups %%ymm7, 32(%[c3])\n"
    "vmovups %%ymm8, (%[c3],%[cr],1)\n"
    "vmovups %%ymm9, 32(%[c3],%[cr],1)\n"
    "vmovups %%ymm10, (%[c3],%[cr],2)\n"
    "vmovups %%ymm11, 32(%[c3],%[cr],2)\n"
    : [a0] "+r"(a0), [a3] "+r"(a3), [b] "+r"(bp), [n] "+r"(depth)
    : [ar] "r"(a_row_bytes), [ak] "r"(a_k_bytes), [bk] "r"(b_k_bytes), [c0] "r"(c), [c3] "r"(c3),
      [cr] "r"(c_row_bytes), [mode] "r"(mode), [scale] "m"(scale)
    : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "cc", "memory");
}
#endif

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
