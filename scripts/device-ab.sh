#!/usr/bin/env bash
# One device call for the kernel restructure (issue #12): verify, the bf16 grid of the new binary
# against the pre-restructure one (96ddd2c, SASS-identical to a5d06a4) alternated in rounds, with
# PyTorch's cuDNN and flash backends on the same shapes, then the GPU tests and the sanitizers
# with what time is left. Most important first, so a time limit cuts the least important.
# Build here first:
#   scripts/build-static.sh; scripts/build-gpu-tests.sh
#   the old binary: git archive 96ddd2c | tar -x -C /tmp/old && (cd /tmp/old && swift build -c release \
#     --static-swift-stdlib --product flash-attention --scratch-path /tmp/old-build) &&
#     strip -o .devbin-cuda/flash-attention-96ddd2c /tmp/old-build/release/flash-attention &&
#     xz -T2 -1 -f .devbin-cuda/flash-attention-96ddd2c
# Then on the device with carry [".devbin-cuda"] (about 55 MB): scripts/device-ab.sh [rounds]
#   ROUND_DEADLINE_S: no round starts after this many seconds (default 330)
#   END_S: the GPU tests and sanitizers stop by this many seconds (default 520)
set -u -o pipefail
rounds="${1:-2}"
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
new=/tmp/fa-new
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention.xz > "$new" && xz -dc .devbin-cuda/flash-attention-96ddd2c.xz > "$old"
chmod +x "$new" "$old"
export PYTHONUNBUFFERED=1
log="$OUT/ab.log"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$log"
left() { echo $(( ${END_S:-520} - SECONDS )); }

# 1. verify: the new binary with the default kernels and with the FlashAttention-2 forward.
FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new "$new" verify --device cuda --json "$OUT/verify.json" > "$OUT/verify.log" 2>&1
echo "verify (new): exit $? $(tail -n 1 "$OUT/verify.log") at ${SECONDS}s" | tee -a "$log"
FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new "$new" verify --device cuda --forward-kernel fa2 > "$OUT/verify-fa2.log" 2>&1
echo "verify (new, --forward-kernel fa2): exit $? $(tail -n 1 "$OUT/verify-fa2.log") at ${SECONDS}s" | tee -a "$log"

# 2. PyTorch SDPA (cuDNN, flash) on the grid's shapes.
python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash,cudnn \
  --seqlens 1024,4096,16384 --passes forward,backward --json "$OUT/torch.json" --quiet > "$OUT/torch.txt" 2>&1
echo "torch: exit $? at ${SECONDS}s" | tee -a "$log"

# 3. The grid, old and new alternated (order swapped each round). Head dims 64/128/256 run the
# Hopper kernels; 96 and 192 the FlashAttention-2 backward; the fa2 lines its forward.
grid=(--seqlens 1024,4096,16384)
for round in $(seq 1 "$rounds"); do
  if [ "$SECONDS" -gt "${ROUND_DEADLINE_S:-330}" ]; then echo "round $round skipped: ${SECONDS}s elapsed" | tee -a "$log"; break; fi
  order="old new"
  [ $((round % 2)) -eq 0 ] && order="new old"
  for side in $order; do
    bin="$old"; fa2env=(env FLASH_ATTENTION_FORWARD=fa2); fa2flag=()
    if [ "$side" = new ]; then bin="$new"; fa2env=(env); fa2flag=(--forward-kernel fa2); fi
    export FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-$side
    "$bin" kernels --time "${grid[@]}" --head-dims 64,128,256 > "$OUT/$side-$round.txt" 2>&1
    "$bin" kernels --time "${grid[@]}" --head-dims 96,192 >> "$OUT/$side-$round.txt" 2>&1
    "${fa2env[@]}" "$bin" kernels --time "${grid[@]}" --head-dims 64,128,256 --forward-only "${fa2flag[@]}" \
      > "$OUT/$side-fa2-$round.txt" 2>&1
    echo "round $round $side: done at ${SECONDS}s" | tee -a "$log"
  done
done
unset FLASH_ATTENTION_CACHE_DIR
python3 scripts/ab-summary.py "$OUT" "$OUT/ab-summary.json" 2>&1 | tee -a "$log"

# 4. The GPU tests (streams, NaN inputs, large scores, the verify matrix in fp16/bf16 with both
# forward families), then the sanitizers on the odd-size cases, in the time left.
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
budget=$(left); [ "$budget" -gt 200 ] && budget=200
if [ "$budget" -gt 20 ]; then
  FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new LD_LIBRARY_PATH=/tmp/gt/lib timeout "$budget" \
    /tmp/gt/tests --testing-library swift-testing --filter "StreamTests|GPUAttentionTests|NonFiniteAndLargeScoreTests" > "$OUT/tests.log" 2>&1
  echo "GPU tests: exit $? $(grep -E 'Test run with' "$OUT/tests.log" | tail -n 1) at ${SECONDS}s" | tee -a "$log"
  grep -E "✘" "$OUT/tests.log" | head -n 20 | tee -a "$log"
fi
for tool in memcheck racecheck; do
  budget=$(left)
  [ "$budget" -lt 20 ] && { echo "compute-sanitizer $tool: no time left" | tee -a "$log"; continue; }
  FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new timeout "$budget" compute-sanitizer --tool "$tool" --error-exitcode 9 "$new" \
    verify --device cuda --dtype bfloat16 --filter "${SANITIZE_FILTER:-odd}" > "$OUT/sanitize-$tool.log" 2>&1
  echo "compute-sanitizer $tool: exit $? $(grep -E 'ERROR SUMMARY' "$OUT/sanitize-$tool.log" | tr '\n' ' ') at ${SECONDS}s" | tee -a "$log"
done
