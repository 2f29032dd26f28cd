#!/usr/bin/env bash
# Second device call of 2026-12-06's third session (END_S default 560 s): the exact exponent's
# speed after fa91b84 (old binary .devbin-cuda/flash-attention-old.xz against the new, alternated
# twice: Hopper forward at d 64/128, FlashAttention-2 forward at d 64/128) and the large-score
# suite; then the fused decode merge and the clean flush (scripts/device-decode-fused.sh's steps:
# verify kv- fused, the bit-identity suite, memcheck, the A/B bench, racecheck).
# Output: $OUT/c2.tgz and $OUT/c2.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c2 560
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
for i in 1 2; do
  CAP=60 step large-$i 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
    --filter NonFiniteAndLargeScoreTests
  grep -E "✘|tol " "$work/large-$i.log" | cut -c1-300 | head -n 8 | tee -a "$log"
done
for round in 1 2; do
  for which in old new; do
    binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP=50 step fwd-$which-$round 30 "$binary" bench --device cuda --grid flash --dtypes bf16 --head-dims 64,128 \
      --passes forward --impls flash --reps 30 --json "$work/fwd-$which-$round.json"
    CAP=30 step fa2-$which-$round 15 "$binary" bench --device cuda --grid custom --dtypes fp16 --head-dims 64,128 \
      --seqlens 4096 --batch 4 --heads 16 --passes forward --impls flash --forward-kernel fa2 --reps 30 \
      --json "$work/fa2-$which-$round.json"
  done
done
CAP=40 step verify-kv-fused 10 "$bin" verify --device cuda --filter kv- --decode-combine fused
fails verify-kv-fused
CAP=90 step fused-gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter "KVCacheFusedMergeGPUTests"
grep -E "✘|Test run with" "$work/fused-gpu-tests.log" | cut -c1-240 | head -n 20 | tee -a "$log"
sanitize() {  # tool, cap: compute-sanitizer on the kv- verify cases through the fused merge
  CAP="$2" step "$1-fused" 15 compute-sanitizer --tool "$1" --error-exitcode 9 "$bin" verify --device cuda \
    --dtype bfloat16 --filter kv- --decode-combine fused
  grep -h "ERROR SUMMARY\|RACECHECK SUMMARY" "$work/$1-fused.log" | tee -a "$log"
}
sanitize memcheck 60
CAP=70 step bench-fused 20 "$bin" bench --grid decode --decode-batches 1,2,4,16 --seqlens 8192,32768,131072 \
  --page-sizes 0,16 --decode-combine separate,fused --decode-flush dirty,clean --json "$work/decode-fused.json"
sanitize racecheck 80
device_call_end c2
