#!/usr/bin/env bash
# Device call r32 (END_S default 240 s), after r31: the Python package built with the swapped
# decode tile (the wheel of 500a56a's kernels) on its KV-cache, combine and large-score CUDA
# tests, the KV-cache GPU suites r31's cap cut short (the verify matrix with both merges, the
# loaders), and racecheck on the fused merge with the new tile.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel.
# Output: $OUT/r32.tgz, $OUT/r32.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r32 240
install_package
CAP=80 step pytest-kv 30 python3 -m pytest python/tests/test_kvcache.py python/tests/test_combine.py \
  python/tests/test_large_scores.py -q -p no:cacheprovider -rfE -k cuda -n 8
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-kv.log" | cut -c1-220 | tail -n 8 | tee -a "$log"
gpu_tests 90 'KVCacheGPUTests|KVCacheLoaderGPUTests|KVCacheFusedMergeGPUTests'
sanitize racecheck 50 'KVCacheFusedMergeGPUTests'
device_call_end r32
