// dQ added by bulk reductions (sm_90 and later; included only by kernels compiled with
// FA_DQ_BULK): a warp or warpgroup stages its piece of a step's dQ in shared memory and one thread
// adds the whole piece into the fp32 accumulator with one cp.reduce.async.bulk, which the TMA unit
// carries out while the kernel goes on. The accumulator is laid out in those pieces,
// [batch, heads_q, query block, piece, piece elements]; the FlashAttention-2 key/value kernels
// (sm80/backward.cu), the Hopper fused backward (hopper/backward.cu) and the convert kernel that
// undoes the layout (sm80/backward.cu) all number the pieces with dq_piece_number, so they agree.
#pragma once
#include "common/types.cuh"

// Adds `bytes` of shared memory at `src` into global `dst`, then commits the bulk group.
__device__ __forceinline__ void bulk_reduce_add(float* dst, u32 src, int bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n"
               :: "l"(dst), "r"(src), "r"(bytes) : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// Until this thread's reductions have read their shared memory (it may then be rewritten).
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
// Until this thread's reductions are done (the shared memory must stay until then).
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// The number of piece `piece` (of `pieces` per query block of `block_rows` rows) of query block
// `block` of (batch, head), counted from the accumulator's start.
__device__ __forceinline__ i64 dq_piece_number(
  int batch, int head, int heads_q, int seqlen_q, int block_rows, int block, int pieces, int piece) {
  return (((i64)batch * heads_q + head) * ((seqlen_q + block_rows - 1) / block_rows) + block) * pieces + piece;
}
