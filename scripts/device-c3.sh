#!/usr/bin/env bash
# Third device call of 2026-12-06's third session (END_S default 570 s): dropout in the Hopper
# forward (the GPU suites against the float64 reference given the mask and the CPU's mask, the
# timing of plain / Hopper dropout / sm80 dropout in two rounds of opposite order, memcheck), the
# large-score suite once more, then the full verify of the binary that carries every kernel
# change of the session. Output: $OUT/c3.tgz and $OUT/c3.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c3 570
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=110 step gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter "DropoutHopperTests|DropoutMaskTests|NonFiniteAndLargeScoreTests"
grep -E "✘|↳.*(rel|tol|error)|Test run with" "$work/gpu-tests.log" | cut -c1-260 | head -n 20 | tee -a "$log"
round=0
for impls in flash,flash-dropout,flash-dropout-sm80 flash-dropout-sm80,flash-dropout,flash; do
  round=$((round + 1))
  CAP=80 step "bench-dropout-$round" 30 "$bin" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 \
    --seqlens 4096,16384 --causal both --impls "$impls" --dropout 0.1 --passes forward,backward --reps 30 \
    --json "$work/bench-dropout-$round.json"
  grep -E "^flash" "$work/bench-dropout-$round.log" | tee -a "$log"
done
CAP=45 step memcheck-dropout 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --filter dropout
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
step verify 30 "$bin" verify --device cuda --json "$work/verify.json"
fails verify 20
grep -c PASS "$work/verify.log" | sed 's/^/verify cases passed: /' | tee -a "$log"
device_call_end c3
