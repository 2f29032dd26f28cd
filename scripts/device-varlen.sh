#!/usr/bin/env bash
# One device call for the packed variable-length (cu_seqlens) path, issue #15:
#   1. the GPU test suite GPUVarlenTests (the verify matrix's varlen cases x bf16/fp16, and
#      device index data on a caller's stream against the staged path),
#   2. `verify --device cuda --filter varlen` with the default kernels (Hopper on sm_90a) and with
#      the FlashAttention-2 forward (--forward-kernel fa2),
#   3. compute-sanitizer memcheck and racecheck on the small varlen cases (seqused, NaN rows,
#      empty sequences),
#   4. `bench --grid varlen` (ours, varlen and the fixed-length batch of the same work) and
#      PyTorch SDPA (cuDNN, flash) on the same length mix padded, in the same call.
# Build here first: scripts/build-static.sh and scripts/build-gpu-tests.sh; on the device, with
# carry [".devbin-cuda"]: scripts/device-varlen.sh. Logs and JSON go to $OUT.
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
BIN="${FLASH_ATTENTION_BIN:-/tmp/flash-attention}"
if [ ! -x "$BIN" ] && [ -f .devbin-cuda/flash-attention.xz ]; then
  xz -dc .devbin-cuda/flash-attention.xz > "$BIN" && chmod +x "$BIN"
fi
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR="${FLASH_ATTENTION_CACHE_DIR:-/tmp/fa-cache}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$OUT/varlen.log"

if [ -f .devbin-cuda/gpu-tests.tar.xz ]; then
  mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
  LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter 'GPUVarlenTests' \
    > "$OUT/varlen-tests.log" 2>&1
  echo "GPUVarlenTests: exit $? $(grep -E 'Test run' "$OUT/varlen-tests.log" | tail -n 1)" | tee -a "$OUT/varlen.log"
fi

"$BIN" verify --device cuda --filter varlen --json "$OUT/verify-varlen.json" > "$OUT/verify-varlen.log" 2>&1
echo "verify varlen: exit $? $(tail -n 1 "$OUT/verify-varlen.log")" | tee -a "$OUT/varlen.log"
grep FAIL "$OUT/verify-varlen.log" | head -n 10 | tee -a "$OUT/varlen.log"
"$BIN" verify --device cuda --filter varlen --forward-kernel fa2 > "$OUT/verify-varlen-fa2.log" 2>&1
echo "verify varlen (fa2 forward): exit $? $(tail -n 1 "$OUT/verify-varlen-fa2.log")" | tee -a "$OUT/varlen.log"

for tool in memcheck racecheck; do
  for filter in varlen-seqused varlen-nan-unused-d128 varlen-empty; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN" verify --device cuda --dtype bfloat16 \
      --filter "$filter" > "$OUT/sanitize-$tool-$filter.log" 2>&1
    echo "compute-sanitizer $tool $filter: exit $? $(grep -E 'ERROR SUMMARY|passed' "$OUT/sanitize-$tool-$filter.log" | tr '\n' ' ')" \
      | tee -a "$OUT/varlen.log"
  done
done

"$BIN" bench --device cuda --grid varlen --passes forward,backward --json "$OUT/bench-varlen.json" --quiet \
  2>&1 | tee "$OUT/bench-varlen.txt"
python3 benchmarks/peers/torch_sdpa.py --device cuda --grid varlen --impls cudnn,flash \
  --passes forward,backward --json "$OUT/torch-varlen.json" --quiet 2>&1 | tee "$OUT/torch-varlen.txt" | tail -n 20
