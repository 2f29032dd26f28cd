// Tile copies of the FlashAttention-2 kernels: global memory to shared with cp.async.
#pragma once
#include "sm80/ptx.cuh"

// Copies a [rows x COLS] tile (COLS a multiple of 8 <= COLS_PAD) into shared memory with row
// pitch PITCH elements; rows >= valid_rows and columns >= COLS are zero-filled.
template <int ROWS, int COLS, int COLS_PAD, int PITCH, int THREADS>
__device__ __forceinline__ void load_tile(u16* smem, const u16* gmem, i64 row_stride, int valid_rows, int tid) {
  constexpr int CHUNKS = COLS_PAD / 8;
  #pragma unroll
  for (int idx = tid; idx < ROWS * CHUNKS; idx += THREADS) {
    int r = idx / CHUNKS;
    int c = idx % CHUNKS;
    bool valid = r < valid_rows && c * 8 < COLS;
    const u16* src = valid ? gmem + r * row_stride + c * 8 : gmem;
    cp_async16(smem_u32(smem + r * PITCH + c * 8), src, valid);
  }
}
