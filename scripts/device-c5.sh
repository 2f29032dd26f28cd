#!/usr/bin/env bash
# Fifth device call of 2026-12-06's third session (END_S default 330 s): the decode kernel's exact
# exponent. The Python large-score tests (fixed length and KV cache) and the KV-cache tests on
# CUDA, verify's KV-cache cases, the KV-cache GPU suites, and the decode bench at batch 1/4/16
# (to set beside the 09:52 call's fused-merge rows). Output: $OUT/c5.tgz and $OUT/c5.log.
# Carry [".devbin-cuda"] with the wheel and wheels/.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c5 330
install_package
CAP=120 step pytest-kv 30 python3 -m pytest python/tests/test_large_scores.py python/tests/test_kvcache.py -q \
  -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-kv.log" | cut -c1-220 | tail -n 12 | tee -a "$log"
CAP=50 step verify-kv 10 "$bin" verify --device cuda --filter kv-
fails verify-kv
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=60 step gpu-kv 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter "KVCacheGPUTests|NonFiniteAndLargeScoreTests"
grep -E "✘|Test run with" "$work/gpu-kv.log" | cut -c1-240 | head -n 12 | tee -a "$log"
CAP=60 step bench-decode 20 "$bin" bench --grid decode --decode-batches 1,4,16 --seqlens 8192,32768 \
  --page-sizes 0 --json "$work/decode.json"
grep -E "median|lowest" "$work/bench-decode.log" | tee -a "$log"
device_call_end c5
