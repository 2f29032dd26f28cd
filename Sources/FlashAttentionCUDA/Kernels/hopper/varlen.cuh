// Packed variable-length batches in the Hopper kernels (FA_VARLEN): the TMA maps describe the
// packed tensors as one batch entry of `total` rows, so a tile that reaches past its sequence
// reads the next sequence's rows, or rows no sequence uses (past seqused, after the last
// sequence), which may hold NaN or Inf. The masks give those rows' probabilities 0, but a GEMM
// that sums over them (P V, P^T dO, dS^T Q, dS K) would still turn 0 * NaN into NaN, so the
// kernels zero such rows in shared memory before the GEMMs read them.
#pragma once
#include "common/varlen.cuh"
#include "hopper/ptx.cuh"

namespace fa_hopper {

// The batch coordinate of a TMA load: the packed tensors are one batch entry.
__device__ __forceinline__ int tma_batch(int batch) { return FA_VARLEN ? 0 : batch; }

// Zeroes rows [first, rows) of a shared tile of `panels` 64-column panels, each `rows` rows of
// 128 bytes (the 128-byte swizzle permutes 16-byte chunks within a row, so a row stays in its
// 128 bytes), with threads t = 0 .. threads - 1. The caller then fences for the async proxy
// (fence_async_shared) and syncs the threads that read the tile.
__device__ __forceinline__ void zero_tile_rows(u32 tile, int rows, int panels, int first, int t, int threads) {
  first = max(first, 0);
  const int chunks = (rows - first) * 8;  // 16-byte chunks per panel
  for (int i = t; i < chunks * panels; i += threads) {
    const int panel = i / chunks, rest = i % chunks;
    const u32 address = tile + panel * rows * 128 + (first + rest / 8) * 128 + (rest % 8) * 16;
    asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};" ::"r"(address), "r"(0u) : "memory");
  }
}

}  // namespace fa_hopper
