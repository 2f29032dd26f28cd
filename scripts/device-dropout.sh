#!/usr/bin/env bash
# One device call for dropout in the Hopper forward (issue #19; prediction in
# docs/perf-notes/features-2026-12-06.md, "Dropout in the Hopper forward"), most important first,
# each step under the time left (END_S, default 560 s):
#   1. verify's dropout cases on the new default route (Hopper forward) and on the old one
#      (--dropout-kernels sm80),
#   2. the GPU suites "Dropout on the Hopper forward" (DropoutHopperTests: both routes x
#      fp16/bf16 against the float64 reference given the mask, 10 problems) and "Dropout mask"
#      (DropoutMaskTests: the GPU keep mask equals the CPU's),
#   3. the timing: plain flash, dropout on the Hopper forward and dropout on the sm80 forward,
#      per case one after another in the same run, bf16, d 128, N 4k and 16k, causal and not,
#      two rounds (the second in the opposite impl order),
#   4. compute-sanitizer memcheck on the dropout verify cases (Hopper route).
# Build here first: scripts/build-static.sh and scripts/build-gpu-tests.sh; on the device, with
# carry [".devbin-cuda"]: scripts/device-dropout.sh. Logs in $OUT/dropout.tgz and $OUT/dropout.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin dropout 560

for route in hopper sm80; do
  CAP=60 step "verify-dropout-$route" 10 "$bin" verify --device cuda --filter dropout --dropout-kernels "$route"
  fails "verify-dropout-$route"
done
if [ -f .devbin-cuda/gpu-tests.tar.xz ]; then
  mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
  LD_LIBRARY_PATH=/tmp/gt/lib CAP=150 step gpu-tests 30 /tmp/gt/tests --testing-library swift-testing \
    --filter "${TEST_FILTER:-DropoutHopperTests|DropoutMaskTests}"
  grep -E "✘|↳.*(rel|tol|error)" "$work/gpu-tests.log" | cut -c1-260 | head -n 20 | tee -a "$log"
fi
round=0
for impls in flash,flash-dropout,flash-dropout-sm80 flash-dropout-sm80,flash-dropout,flash; do
  round=$((round + 1))
  CAP=90 step "bench-dropout-$round" 30 "$bin" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 \
    --seqlens 4096,16384 --causal both --impls "$impls" --dropout 0.1 --passes forward,backward --reps 30 \
    --json "$work/bench-dropout-$round.json"
  grep -E "^flash" "$work/bench-dropout-$round.log" | tee -a "$log"
done
CAP=60 step memcheck-dropout 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --filter dropout
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
device_call_end dropout
