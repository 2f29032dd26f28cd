// The Hopper (sm_90) bulk-copy loader's PTX for the decode kernel (FA_BULK): one
// `cp.async.bulk` per K or V row of a key (the row of one kv head is contiguous in both cache
// layouts; the rows of a page are not, because the heads interleave), completing on an
// mbarrier per stage of a warp's ring with the stage's byte count as its transaction count.
// Rules of the bulk copy: global and shared addresses 16-byte aligned, size a multiple of 16.
// The host guarantees them (device rows are 16-byte aligned, head dims are multiples of 8).
#pragma once
#include "common/types.cuh"

__device__ __forceinline__ void bulk_mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}

// Makes the barriers' initialization visible to the async proxy (the bulk copies' complete_tx).
__device__ __forceinline__ void bulk_mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// This phase's single arrival, with `bytes` more transactions to wait for (the kernel issues the
// phase's copies after it, so their complete_tx never runs ahead of the expectation).
__device__ __forceinline__ void bulk_mbar_arrive_expect(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}

// Waits until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void bulk_mbar_wait(u32 bar, u32 parity) {
  u32 done;
  do {
    asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done) : "r"(bar), "r"(parity) : "memory");
  } while (!done);
}

// `bytes` (a multiple of 16) from global `src` to shared `dst` (both 16-byte aligned), counted
// on the barrier `bar` of the destination's stage.
__device__ __forceinline__ void bulk_copy_g2s(u32 dst, const void* src, u32 bytes, u32 bar) {
  asm volatile(
    "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
    ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy accesses of
// the same bytes (a zeroed row that a later bulk copy could overwrite).
__device__ __forceinline__ void bulk_fence_proxy() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
