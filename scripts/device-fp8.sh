#!/usr/bin/env bash
# One device call for the fp8 (e4m3) forward (issue #18), on an H100:
#   1. the GPU tests of the fp8 path and the CUDA kernels (Float8GPUTests, GPUAttentionTests),
#   2. `verify --device cuda --dtype fp8` (the fp8 matrix: causal, windows, softcap, GQA/MQA,
#      odd lengths, strided rows, outlier channels) and the bf16/fp16 matrix (no regression),
#   3. compute-sanitizer memcheck + racecheck on a few fp8 cases (the V^T ring and its barriers),
#   4. `bench --dtypes fp8,bf16` forward on the same shapes (d 128/256, N 8k/16k, causal and not),
#      alternated in rounds (fp8 first, then bf16 first), TFLOP/s side by side.
# Build here first: scripts/build-static.sh; scripts/build-gpu-tests.sh
# Then on the device with carry [".devbin-cuda"]: scripts/device-fp8.sh [rounds]
set -u -o pipefail
rounds="${1:-2}"
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
BIN=/tmp/fa-fp8
xz -dc .devbin-cuda/flash-attention.xz > "$BIN" && chmod +x "$BIN"
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-fp8
log="$OUT/fp8.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$log"

if [ -f .devbin-cuda/gpu-tests.tar.xz ]; then
  mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
  LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
    --filter "Float8GPUTests|Float8HopperCompileTests|GPUAttentionTests" > "$OUT/tests.log" 2>&1
  echo "GPU tests: exit $? $(grep -E 'Test run with' "$OUT/tests.log" | tail -n 1)" | tee -a "$log"
  grep -E "✘|failed|error" "$OUT/tests.log" | head -n 20 | tee -a "$log"
fi

"$BIN" verify --device cuda --dtype fp8 --forward-only --json "$OUT/verify-fp8.json" > "$OUT/verify-fp8.log" 2>&1
echo "verify fp8: exit $? $(tail -n 1 "$OUT/verify-fp8.log")" | tee -a "$log"
grep -E "FAIL" "$OUT/verify-fp8.log" | head -n 20 | tee -a "$log"
"$BIN" verify --device cuda > "$OUT/verify.log" 2>&1
echo "verify fp16/bf16: exit $? $(tail -n 1 "$OUT/verify.log")" | tee -a "$log"

for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN" verify --device cuda --dtype fp8 --forward-only \
    --filter "${SANITIZE_FILTER:-fp8-odd}" > "$OUT/sanitize-$tool.log" 2>&1
  echo "compute-sanitizer $tool (fp8): exit $? $(grep -E 'ERROR SUMMARY|passed' "$OUT/sanitize-$tool.log" | tr '\n' ' ')" | tee -a "$log"
done

# Forward TFLOP/s, fp8 and bf16 on the same shapes (FlashAttention grid: batch 16384/N, heads
# 2048/d), the order swapped each round.
for round in $(seq 1 "$rounds"); do
  order="fp8 bf16"
  [ $((round % 2)) -eq 0 ] && order="bf16 fp8"
  for dtype in $order; do
    "$BIN" bench --device cuda --dtypes "$dtype" --head-dims 128,256 --seqlens 8192,16384 --causal both \
      --passes forward --impls flash --quiet --json "$OUT/bench-$dtype-$round.json" > "$OUT/bench-$dtype-$round.txt" 2>&1
    echo "bench round $round $dtype: exit $?" | tee -a "$log"
    cat "$OUT/bench-$dtype-$round.txt" | tee -a "$log"
  done
done
