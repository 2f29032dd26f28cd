#!/usr/bin/env bash
# Device call r21 (END_S default 110 s): the default after r20 (plain d 64/128 backwards issue
# dQ's GEMM first): verify (bf16) and the GPU suites that run the backward through the default
# route (HopperBackwardBulkTests, GPUAttentionTests).
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz. Output: $OUT/r21.tgz, $OUT/r21.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r21 110
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=55 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'HopperBackwardBulkTests|GPUAttentionTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | grep -vE "Test case passing" | tail -n 10 | cut -c1-200 | tee -a "$log"
gzip -f "$work/gpu-tests.log"
CAP=50 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
device_call_end r21
