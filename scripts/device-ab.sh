#!/usr/bin/env bash
# One device call for the kernel restructure (issue #12): the GPU tests, verify, and the bf16
# grid of the new binary against the pre-restructure one (96ddd2c, SASS-identical to a5d06a4),
# alternated in rounds, with PyTorch's cuDNN and flash backends on the same shapes.
# Build here first:
#   scripts/build-static.sh; scripts/build-gpu-tests.sh
#   the old binary: git archive 96ddd2c | tar -x -C /tmp/old && (cd /tmp/old && swift build -c release \
#     --static-swift-stdlib --product flash-attention --scratch-path /tmp/old-build) &&
#     strip -o .devbin-cuda/flash-attention-96ddd2c /tmp/old-build/release/flash-attention &&
#     xz -T2 -1 -f .devbin-cuda/flash-attention-96ddd2c
# Then on the device with carry [".devbin-cuda"] (about 53 MB): scripts/device-ab.sh [rounds]
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
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$log"

# 1. The GPU tests (streams, NaN inputs, large scores, the CUDA kernels against float64; the
# compile-only suites run without a GPU, so they are left out here).
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new LD_LIBRARY_PATH=/tmp/gt/lib \
  /tmp/gt/tests --testing-library swift-testing --filter "StreamTests|GPUAttentionTests|NonFiniteAndLargeScoreTests" > "$OUT/tests.log" 2>&1
echo "GPU tests: exit $? $(grep -E 'Test run with' "$OUT/tests.log" | tail -n 1)" | tee -a "$log"
grep -E "✘|failed|error" "$OUT/tests.log" | head -n 20 | tee -a "$log"

# 2. verify: the new binary with the default kernels and with the FlashAttention-2 forward.
FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new "$new" verify --device cuda > "$OUT/verify.log" 2>&1
echo "verify (new): exit $? $(tail -n 1 "$OUT/verify.log")" | tee -a "$log"
FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new "$new" verify --device cuda --forward-kernel fa2 > "$OUT/verify-fa2.log" 2>&1
echo "verify (new, --forward-kernel fa2): exit $? $(tail -n 1 "$OUT/verify-fa2.log")" | tee -a "$log"

# 3. The grid, old and new alternated (order swapped each round). Head dims 64/128/256 run the
# Hopper kernels; 96 and 192 the FlashAttention-2 backward; the fa2 lines its forward.
grid=(--seqlens 1024,4096,16384)
for round in $(seq 1 "$rounds"); do
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
    echo "round $round $side: done" | tee -a "$log"
  done
done
unset FLASH_ATTENTION_CACHE_DIR

# 4. PyTorch SDPA (cuDNN, flash) on the same shapes.
python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash,cudnn \
  --seqlens 1024,4096,16384 --passes forward,backward --json "$OUT/torch.json" --quiet > "$OUT/torch.txt" 2>&1
echo "torch: exit $?" | tee -a "$log"
