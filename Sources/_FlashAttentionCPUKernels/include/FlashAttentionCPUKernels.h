#ifndef FLASH_ATTENTION_CPU_KERNELS_H
#define FLASH_ATTENTION_CPU_KERNELS_H

// The vector code of the CPU backend: tile-level operations (a whole tile product with its mask
// band, a whole online-softmax step, packing, conversions, epilogues), compiled once per
// instruction set with `__attribute__((target(...)))` and reached through a table chosen once
// from `cpuid`. Swift drives the tiling, the work order and the threads.
//
// Why C: SwiftPM refuses `unsafeFlags` (such as `-Xcc -march=x86-64-v4`) in any package that is
// resolved by version, and Swift code built without a CPU target lowers fused multiply-adds to
// `fmaf` calls and half-precision conversions to library calls. Clang compiles a function for a
// CPU target given by an attribute, within a translation unit built for the baseline, so one
// source body included twice (kernels_avx2.c, kernels_avx512.c) gives both builds with no flags,
// and code for a wider instruction set only ever runs after `cpuid` said the CPU has it.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Storage types of `fa_rows` (the values of `DType` in FlashAttentionCore).
enum {
  FA_DTYPE_F32 = 0,
  FA_DTYPE_F16 = 1,
  FA_DTYPE_BF16 = 2,
};

/// Rows of one (batch, head) slice of a `[batch, seqlen, heads, width]` tensor, or of a packed
/// float32 tile: row `r` starts `r * row_stride` elements after `base`.
typedef struct fa_rows {
  void *_Nonnull base;
  ptrdiff_t row_stride;
  ptrdiff_t width;
  int32_t dtype;
} fa_rows;

/// The tile-local form of a causal or window mask: row `r` pairs with the indices
/// `r + low ... r + high` (inclusive; a bound is absent when its flag is false). `enabled` false
/// means every pair is visible.
typedef struct fa_band {
  ptrdiff_t low;
  ptrdiff_t high;
  bool has_low;
  bool has_high;
  bool enabled;
} fa_band;

/// `C (+)= A · B` over `rows × columns`, both rounded up to the micro-kernel's blocks (6 rows;
/// 16 columns, 32 where the AVX-512 micro-kernel runs): the buffers hold the rounded-up rows and
/// columns, and what lands in C's padding is ignored. `A[r, k]` is `a[r * a_row + k * a_k]`
/// (two strides, so a tile or its transpose is read without a copy); `B[k][n]` is
/// `b[k * b_k + n]`, or, when `b_panels > 0`, B is in column panels as `pack_panels` writes them
/// (the block of columns `n..<n + w` at `b + n * b_panels`, rows of `w` floats); `C[r][n]` is
/// `c[r * c_row + n]`.
///
/// `column_band` limits the columns each 6-row group computes (blocks outside keep whatever C
/// held: the caller masks them); `depth_band` limits the summed range of each group (exact: the
/// terms left out are zero). `scale` multiplies the product when `accumulate` is false.
typedef struct fa_gemm {
  ptrdiff_t rows;
  ptrdiff_t columns;
  ptrdiff_t depth;
  const float *_Nonnull a;
  ptrdiff_t a_row;
  ptrdiff_t a_k;
  const float *_Nonnull b;
  ptrdiff_t b_k;
  ptrdiff_t b_panels;
  float *_Nonnull c;
  ptrdiff_t c_row;
  bool accumulate;
  float scale;
  fa_band column_band;
  fa_band depth_band;
} fa_gemm;

/// One online-softmax step of the forward pass on a transposed score tile `Sᵀ[key][query]`:
/// the scores are scaled already (the product was scaled by `scale`), or, with `softcap` set,
/// raw dot products that become `c · tanh(s · softcap_inner)` first (`softcap_outer = c`). Then the mask (`mask`, queries per key row, applied to the
/// first `query_count` columns), the running max and sum of every query (`row_max`, `row_sum`,
/// `padded_queries` of each), the tile turned into `e^(s − max)`, and the output rows
/// `out[query][0..<out_width]` rescaled where a max grew. `alpha` is scratch for
/// `padded_queries` floats.
typedef struct fa_forward_step {
  float *_Nonnull scores;
  ptrdiff_t leading;
  ptrdiff_t key_count;
  ptrdiff_t query_count;
  ptrdiff_t padded_queries;
  bool softcap;
  float softcap_inner;
  float softcap_outer;
  fa_band mask;
  float *_Nonnull row_max;
  float *_Nonnull row_sum;
  float *_Nonnull alpha;
  float *_Nonnull out;
  ptrdiff_t out_leading;
  ptrdiff_t out_width;
  /// ALiBi, after the softcap and before the mask: `Sᵀ[key][query] -= alibi_slope ·
  /// |alibi_diagonal + query − key|` with `alibi_diagonal = first_query + seqlen_k − seqlen_q −
  /// first_key`; a slope of 0 skips it (and adds nothing).
  float alibi_slope;
  ptrdiff_t alibi_diagonal;
} fa_forward_step;

/// The forward epilogue of `count` query rows: `O / sum` into `out` rows `first_row...` (in its
/// dtype) and `LSE = max + ln(sum)` at `lse[(first_row + r) * lse_stride]` (in double, rounded
/// once: where the softmax is one-hot the LSE is the max itself, so the backward pass recomputes
/// P = 1 exactly). A row whose sum is 0 (it saw no key) gets zeros and LSE -inf; a NaN sum (a
/// NaN or inf input, or scores past float32's range) gives NaN, never a row that looks masked.
typedef struct fa_forward_epilogue {
  const float *_Nonnull tile;
  ptrdiff_t leading;
  ptrdiff_t count;
  const float *_Nonnull row_max;
  const float *_Nonnull row_sum;
  fa_rows out;
  ptrdiff_t first_row;
  float *_Nonnull lse;
  ptrdiff_t lse_stride;
} fa_forward_epilogue;

/// The probabilities of the backward pass on a score tile `S[query][key]` (the product scaled by
/// `scale`, as in the forward pass, so that each score has the forward's bits): with `softcap`,
/// `t = tanh(s · softcap_inner)` goes to `tanh_out` (same layout) and `s = t · softcap_outer`;
/// then the mask (`mask`, keys per query row, and always the columns `key_count..<padded_keys`)
/// and `P = e^(s − lse[row])`, or `e^((s − lse[row]) − log_sum[row])` where `log_sum` is given
/// (then `lse` holds each row's max: the exact row statistics of large scores). `lse` holds one
/// value per row, +inf for rows that must give P = 0 (padding, rows that saw no key).
typedef struct fa_backward_probabilities {
  float *_Nonnull scores;
  ptrdiff_t leading;
  ptrdiff_t rows;
  ptrdiff_t key_count;
  ptrdiff_t padded_keys;
  bool softcap;
  float softcap_inner;
  float softcap_outer;
  float *_Nullable tanh_out;
  fa_band mask;
  const float *_Nonnull lse;
  const float *_Nullable log_sum;
  /// ALiBi, after the softcap and before the mask: `S[query][key] -= alibi_slope ·
  /// |alibi_diagonal + query − key|` (`alibi_diagonal` as in `fa_forward_step`); 0 skips it.
  float alibi_slope;
  ptrdiff_t alibi_diagonal;
} fa_backward_probabilities;

/// Dropout's keep mask on one tile (fa_philox.h): element (query, key) of (batch, head) pair
/// `batch_head` is kept iff its 8-bit Philox number (fa_philox.h) is below `threshold`, and then
/// weighs `scale` (`1 / (1 − p)`), else 0. The tile's first query and key are `first_query`, `first_key`.
typedef struct fa_dropout {
  uint64_t seed;
  uint64_t offset;
  uint32_t threshold;
  uint32_t batch_head;
  float scale;
  ptrdiff_t first_query;
  ptrdiff_t first_key;
} fa_dropout;

/// `dS = P · ((dP − D[row]) − D_low[row]) · scale`, times `1 − tanh²` where `tanh` is given,
/// written over dP (`gradient`); exactly 0 wherever P is 0, whatever dP or tanh hold there (stale
/// scratch under a mask may be NaN). `rows × columns`, both tiles with row pitch `leading`.
/// `row_d_low` (nullable: 0) is D's low part where D is kept as an fp32 pair (the large-score
/// statistics): dP − D then keeps its digits when D is within a few units of dP.
typedef struct fa_score_gradient {
  const float *_Nonnull probabilities;
  float *_Nonnull gradient;
  const float *_Nullable tanh;
  ptrdiff_t leading;
  ptrdiff_t rows;
  ptrdiff_t columns;
  const float *_Nonnull row_d;
  float scale;
  const float *_Nullable row_d_low;
} fa_score_gradient;

/// The operations of one build. Every pointer is set; a table is only handed out where the
/// CPU runs its instruction set (`fa_cpu_kernels_for`).
typedef struct fa_cpu_kernels {
  /// "avx2" or "avx512".
  const char *_Nonnull name;
  /// Floats per vector register (8 or 16).
  int32_t lanes;
  /// Columns of the widest micro-kernel block (16 or 32): the width of `pack_panels`' panels.
  int32_t wide_columns;

  void (*_Nonnull gemm)(const fa_gemm *_Nonnull);
  void (*_Nonnull forward_step)(const fa_forward_step *_Nonnull);
  void (*_Nonnull forward_epilogue)(const fa_forward_epilogue *_Nonnull);
  /// After a `forward_step` on a tile of P (`Sᵀ[key][query]`, pitch `leading`):
  /// `sums[q] = sums[q] · alpha[q] + Σ_key p[key][q] · values[key][q]` over `keys` rows and
  /// `padded` columns, the running numerator of D = Σ_j P_j · dP_j; where p is 0 the term is
  /// exactly 0, whatever `values` holds (stale scratch under a mask).
  void (*_Nonnull weighted_column_sums)(
    const float *_Nonnull p, const float *_Nonnull values, ptrdiff_t leading, ptrdiff_t keys, ptrdiff_t padded,
    const float *_Nonnull alpha, float *_Nonnull sums);
  void (*_Nonnull backward_probabilities)(const fa_backward_probabilities *_Nonnull);
  void (*_Nonnull score_gradient)(const fa_score_gradient *_Nonnull);

  /// Rows `start..<start + count` as float32 rows of `leading` floats at `destination`, columns
  /// past `width` and rows `count..<padded_rows` zero-filled.
  void (*_Nonnull pack_rows)(
    const fa_rows *_Nonnull, ptrdiff_t start, ptrdiff_t count, ptrdiff_t padded_rows,
    float *_Nonnull destination, ptrdiff_t leading);
  /// Rows transposed: `destination[c * leading + r]` is element `c` of row `start + r`; the
  /// columns `count..<padded_rows` zero-filled.
  void (*_Nonnull pack_transposed)(
    const fa_rows *_Nonnull, ptrdiff_t start, ptrdiff_t count, ptrdiff_t padded_rows,
    float *_Nonnull destination, ptrdiff_t leading);
  /// float32 rows (width a multiple of 16) into column panels as wide as the micro-kernel's
  /// blocks: the panel of columns `c..<c + w` starts at `destination + c * row_capacity` and
  /// holds each row's `w` elements contiguously (`fa_gemm.b_panels = row_capacity`).
  void (*_Nonnull pack_panels)(
    const fa_rows *_Nonnull, ptrdiff_t start, ptrdiff_t count, float *_Nonnull destination,
    ptrdiff_t row_capacity);
  /// float32 rows (pitch `leading`) rounded to the rows' dtype into rows `start..<start + count`.
  void (*_Nonnull store_rows)(
    const fa_rows *_Nonnull, ptrdiff_t start, ptrdiff_t count, const float *_Nonnull source,
    ptrdiff_t leading);
  /// `destination[r] = Σ_c a[start + r][c] · b[start + r][c]` (D = rowsum(dO ∘ O)), summed in
  /// the order of a GEMM's element (one FMA per column, in order).
  void (*_Nonnull row_dot)(
    const fa_rows *_Nonnull a, const fa_rows *_Nonnull b, ptrdiff_t start, ptrdiff_t count,
    float *_Nonnull destination);
  /// `destination[r][c] += source[r][c]` for `count` rows of `width` (dQ accumulation).
  void (*_Nonnull add_rows)(
    float *_Nonnull destination, ptrdiff_t destination_stride, const float *_Nonnull source,
    ptrdiff_t source_leading, ptrdiff_t count, ptrdiff_t width);
  /// Standard attention's row softmax: raw dot products `row[0..<padded]` become
  /// `softmax(scale · s)` over the keys `visible_low..<visible_high` (0 elsewhere); returns the
  /// row's LSE (-inf and a zero row when nothing is visible).
  float (*_Nonnull standard_softmax_row)(
    float *_Nonnull row, ptrdiff_t padded, ptrdiff_t visible_low, ptrdiff_t visible_high, float scale);

  /// `iterations` steps of `fma_chain_count` independent FMA chains on full-width vectors;
  /// returns a value that depends on every step. FLOPs: `iterations · chains · lanes · 2`.
  float (*_Nonnull fma_chains)(int64_t iterations, float seed);
  int32_t fma_chain_count;

  /// The kernels' 2^x on `count` values (for tests): exact 0 at and below -127, NaN stays NaN.
  void (*_Nonnull exp2_values)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t count);

  /// Dropout's factors (`scale` or 0) of a `rows × columns` tile with row pitch `leading`:
  /// queries are the rows, or, with `keys_are_rows`, the keys are (the forward's `Sᵀ`).
  void (*_Nonnull dropout_factors)(
    const fa_dropout *_Nonnull, float *_Nonnull factors, ptrdiff_t leading, ptrdiff_t rows, ptrdiff_t columns,
    bool keys_are_rows);
  /// `tile[r][c] *= factors[r][c]` over `rows × columns` (columns a multiple of 16), both with
  /// row pitch `leading`.
  void (*_Nonnull multiply_elementwise)(
    float *_Nonnull tile, const float *_Nonnull factors, ptrdiff_t leading, ptrdiff_t rows, ptrdiff_t columns);
} fa_cpu_kernels;

/// Instruction sets of the tables.
enum {
  FA_ISA_AVX2 = 0,
  FA_ISA_AVX512 = 1,
};

/// The table for `isa`, or NULL when this CPU (or this build, off x86-64) cannot run it. Checks
/// `cpuid` itself; compiled for the baseline instruction set.
const fa_cpu_kernels *_Nullable fa_cpu_kernels_for(int32_t isa);

#endif
