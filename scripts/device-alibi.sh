#!/usr/bin/env bash
# One device call for ALiBi in the Hopper kernels (issue #19, item 4; predictions in
# docs/perf-notes/features-2026-12-06.md, "ALiBi in the Hopper kernels"):
#   1. the GPU suites "ALiBi on the Hopper kernels" (AlibiHopperTests: both routes x fp16/bf16)
#      and "ALiBi kernels" (AlibiKernelTests),
#   2. `verify --device cuda --filter alibi` on the Hopper route and on the old one
#      (--alibi-kernels sm80),
#   3. compute-sanitizer memcheck on the ALiBi verify cases (Hopper route),
#   4. the timing: plain flash, ALiBi on the Hopper kernels and ALiBi on the sm80 kernels, per
#      case one after another in the same run, bf16, d 128, N 4k and 16k, causal and not, two
#      rounds (the second in the opposite impl order),
#   5. the register/spill report of every ALiBi variant (NVRTC of the device).
# Build here first: scripts/build-static.sh and scripts/build-gpu-tests.sh; on the device, with
# carry [".devbin-cuda"]: scripts/device-alibi.sh. Logs and JSON go to $OUT.
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
BIN="${FLASH_ATTENTION_BIN:-/tmp/flash-attention}"
if [ ! -x "$BIN" ] && [ -f .devbin-cuda/flash-attention.xz ]; then
  xz -dc .devbin-cuda/flash-attention.xz > "$BIN" && chmod +x "$BIN"
fi
export FLASH_ATTENTION_CACHE_DIR="${FLASH_ATTENTION_CACHE_DIR:-/tmp/fa-cache}"
log="$OUT/alibi.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$log"

if [ -f .devbin-cuda/gpu-tests.tar.xz ]; then
  mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
  LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter 'AlibiHopperTests|AlibiKernelTests' \
    > "$OUT/alibi-tests.log" 2>&1
  echo "ALiBi GPU suites: exit $? $(grep -E 'Test run' "$OUT/alibi-tests.log" | tail -n 1)" | tee -a "$log"
  grep -E "✘" "$OUT/alibi-tests.log" | head -n 20 | cut -c1-300 | tee -a "$log"
fi

for route in hopper sm80; do
  "$BIN" verify --device cuda --filter alibi --alibi-kernels "$route" --json "$OUT/verify-alibi-$route.json" \
    > "$OUT/verify-alibi-$route.log" 2>&1
  echo "verify alibi ($route): exit $? $(tail -n 1 "$OUT/verify-alibi-$route.log")" | tee -a "$log"
  grep -E "FAIL" "$OUT/verify-alibi-$route.log" | head -n 10 | cut -c1-200 | tee -a "$log"
done

compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN" verify --device cuda --filter alibi \
  > "$OUT/sanitize-memcheck-alibi.log" 2>&1
echo "compute-sanitizer memcheck alibi: exit $? $(grep -E 'ERROR SUMMARY' "$OUT/sanitize-memcheck-alibi.log" | tr '\n' ' ')" \
  | tee -a "$log"

for impls in flash,flash-alibi,flash-alibi-sm80 flash-alibi-sm80,flash-alibi,flash; do
  "$BIN" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 --seqlens 4096,16384 --causal both \
    --impls "$impls" --passes forward,backward --reps 30 --quiet --json "$OUT/bench-alibi-${impls%%,*}.json" \
    > "$OUT/bench-alibi-${impls%%,*}.txt" 2>&1
  echo "bench ($impls): exit $?" | tee -a "$log"
  tail -n 25 "$OUT/bench-alibi-${impls%%,*}.txt" | tee -a "$log"
done

"$BIN" kernels --filter alibi > "$OUT/kernels-alibi.txt" 2>&1
echo "kernels --filter alibi: exit $? $(tail -n 1 "$OUT/kernels-alibi.txt")" | tee -a "$log"
grep -E "SPILL" "$OUT/kernels-alibi.txt" | head -n 10 | tee -a "$log"
