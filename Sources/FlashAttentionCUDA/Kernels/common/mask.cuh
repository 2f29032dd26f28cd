// The attention mask: one rule for every kernel, FlashAttention's bottom-right aligned window.
//
//   key j is visible to query i  iff  j < seqlen_k  and  i + offset - left <= j <= i + offset + right
//
// with offset = seqlen_k - seqlen_q and a negative bound unbounded; causal is the window
// (left, 0). Kernels compile one of three kinds: no mask (both bounds constant -1, so every test
// below folds away), causal (right constant 0) or a window (both bounds at run time). The
// launchers clamp the bounds at seqlen_q + seqlen_k, so no sum below overflows 32 bits.
//
// Bounds are inclusive throughout. Kernels ask the mask for whole blocks first (which key blocks
// a query block can see, or which query blocks see a key block: the transposed form of the
// backward), then whether a (query block, key block) tile needs per-element masking at all, and
// only then for the visible columns of one row as offsets from the thread's first column, so
// that each element costs two compares against compile-time offsets.
#pragma once
#include "common/types.cuh"

enum class MaskKind : int { none = 0, causal = 1, window = 2 };

// [lo, hi) of blocks.
struct BlockRange {
  int lo, hi;
  __device__ __forceinline__ int count() const { return max(0, hi - lo); }
};

// The visible columns of one row as offsets c from a first column: element first + c is visible
// iff lo <= c <= hi.
struct ColumnRange {
  int lo, hi;
  __device__ __forceinline__ bool hides(int c) const { return c > hi || c < lo; }
};

template <MaskKind KIND>
struct Mask {
  static constexpr bool bounded = KIND != MaskKind::none;
  int seqlen_k, offset, left, right;

  __device__ __forceinline__ Mask(int seqlen_q, int seqlen_k, int window_left, int window_right)
      : seqlen_k(seqlen_k),
        offset(seqlen_k - seqlen_q),
        left(KIND == MaskKind::none ? -1 : window_left),
        right(KIND == MaskKind::none ? -1 : KIND == MaskKind::causal ? 0 : window_right) {}

  // The blocks of BN keys that some row of [m0, m0 + BM) can see (rows past seqlen_q included:
  // their keys are masked per element).
  template <int BM, int BN>
  __device__ __forceinline__ BlockRange key_blocks(int m0) const {
    BlockRange r;
    r.hi = (seqlen_k + BN - 1) / BN;
    r.lo = 0;
    if (right >= 0) {
      const int last = m0 + BM - 1 + offset + right;  // last visible key of the last row
      r.hi = min(r.hi, last < 0 ? 0 : last / BN + 1);
    }
    if (left >= 0) {
      const int first = m0 + offset - left;  // first visible key of the first row
      r.lo = first < 0 ? 0 : first / BN;
    }
    return r;
  }

  // The transposed form: the blocks of BM queries (of seqlen_q) with a row that sees a key of
  // [n0, n0 + BN) (keys past seqlen_k excluded).
  template <int BM, int BN>
  __device__ __forceinline__ BlockRange query_blocks(int n0, int seqlen_q) const {
    int first = 0, end = seqlen_q;  // query rows [first, end)
    if (right >= 0) first = max(0, n0 - offset - right);
    if (left >= 0) end = min(seqlen_q, min(n0 + BN, seqlen_k) - 1 - offset + left + 1);
    BlockRange r;
    r.lo = first / BM;
    r.hi = end > first ? (end + BM - 1) / BM : r.lo;
    return r;
  }

  // Whether the tile of rows [m0, m0 + BM) and keys [n0, n0 + BN) has a hidden pair: a key past
  // seqlen_k, or a window edge crossing it.
  template <int BM, int BN>
  __device__ __forceinline__ bool tile_needs_mask(int m0, int n0) const {
    if (n0 + BN > seqlen_k) return true;
    if (right >= 0 && n0 + BN - 1 > m0 + offset + right) return true;
    if (left >= 0 && n0 < m0 + BM - 1 + offset - left) return true;
    return false;
  }

  // The visible keys of query row `row` as offsets from key `first`.
  __device__ __forceinline__ ColumnRange key_columns(int row, int first) const {
    ColumnRange c;
    c.hi = seqlen_k - 1 - first;
    c.lo = -(1 << 30);
    if (right >= 0) c.hi = min(c.hi, row + offset + right - first);
    if (left >= 0) c.lo = row + offset - left - first;
    return c;
  }

  // The transposed form: the queries that see key `key`, as offsets from query `first`, in a
  // tile known to need masking (no limit at seqlen_q: the backward's padded queries have
  // LSE = +inf, so their P is 0 anyway). A key past seqlen_k sees nothing. The branch shape is
  // the one the Hopper backward measured without spills (a struct with an early return made
  // d = 128 spill 20-28 bytes).
  __device__ __forceinline__ ColumnRange query_columns(int key, int first) const {
    ColumnRange c;
    c.lo = -(1 << 30);
    c.hi = 1 << 30;
    if (key >= seqlen_k) c.hi = c.lo;
    if (right >= 0) c.lo = max(c.lo, key - offset - right - first);  // key <= query + offset + right
    if (left >= 0) c.hi = min(c.hi, key - offset + left - first);    // key >= query + offset - left
    return c;
  }
};
