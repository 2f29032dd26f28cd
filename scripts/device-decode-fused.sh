#!/usr/bin/env bash
# One device call for the fused split merge and the clean L2 flush (issue #15 item 6,
# docs/perf-notes/cuda-decode.md "Fused merge and a clean flush"), END_S default 540 s:
# correctness first (verify kv- with the fused merge; the GPU suite that compares its bits with the
# merge kernel's and checks the counters come back to 0; compute-sanitizer memcheck, racecheck and
# synccheck on the fused route), then the two merges × two flushes alternated per shape in one
# bench window (before racecheck and synccheck, which are slow), then the full default decode grid
# with both.
# Output: $OUT/decode-fused.tgz and $OUT/decode-fused.log. Carry [".devbin-cuda"]
# (scripts/build-static.sh; scripts/build-gpu-tests.sh).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin decode-fused 540
CAP=40 step verify-kv-fused 10 "$bin" verify --device cuda --filter kv- --decode-combine fused
fails verify-kv-fused
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=150 step fused-gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter "KVCacheFusedMergeGPUTests"
grep -E "✘|Test run with" "$work/fused-gpu-tests.log" | cut -c1-240 | head -n 20 | tee -a "$log"
sanitize() {  # tool, cap: compute-sanitizer on the kv- verify cases through the fused merge
  CAP="$2" step "$1-fused" 15 compute-sanitizer --tool "$1" --error-exitcode 9 "$bin" verify --device cuda \
    --dtype bfloat16 --filter kv- --decode-combine fused
  grep -h "ERROR SUMMARY\|RACECHECK SUMMARY" "$work/$1-fused.log" | tee -a "$log"
}
sanitize memcheck 60
# The timings before the slower sanitizers, so that they come back whatever the budget.
CAP=60 step bench-fused 20 "$bin" bench --grid decode --decode-batches 1,2,4,16 --seqlens 8192,32768,131072 \
  --page-sizes 0,16 --decode-combine separate,fused --decode-flush dirty,clean --json "$work/decode-fused.json"
sanitize racecheck 90
sanitize synccheck 60
CAP=120 step bench-fused-grid 30 "$bin" bench --grid decode --decode-combine separate,fused \
  --decode-flush dirty,clean --json "$work/decode-fused-grid.json"
device_call_end decode-fused
