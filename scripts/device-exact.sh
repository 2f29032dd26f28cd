#!/usr/bin/env bash
# One device call for the forward's exact exponent at large scores (issue #16): the large-score
# and NaN GPU suites six times (a fresh seed each), the forward A/B against the binary before
# the change (.devbin-cuda/flash-attention-old.xz; old and new alternated, twice), then verify
# with the time left. Output: $OUT/exact.tgz and $OUT/exact.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin exact 560
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
for i in 1 2 3 4 5 6; do
  CAP=70 step large-$i 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
    --filter NonFiniteAndLargeScoreTests
  grep -E "✘|tol " "$work/large-$i.log" | cut -c1-300 | head -n 8 | tee -a "$log"
done
for round in 1 2; do
  for which in old new; do
    binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP=80 step fwd-$which-$round 30 "$binary" bench --device cuda --grid flash --dtypes bf16 --passes forward \
      --impls flash --reps 30 --json "$work/fwd-$which-$round.json"
    CAP=40 step fa2-$which-$round 20 "$binary" bench --device cuda --grid custom --dtypes fp16 --head-dims 64,128 \
      --seqlens 4096 --batch 4 --heads 16 --passes forward --impls flash --forward-kernel fa2 --reps 30 \
      --json "$work/fa2-$which-$round.json"
  done
done
step verify 30 "$bin" verify --device cuda --json "$work/verify.json"
fails verify 20
grep -c PASS "$work/verify.log" | sed 's/^/verify cases passed: /' | tee -a "$log"
device_call_end exact
