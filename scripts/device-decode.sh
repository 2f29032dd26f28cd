#!/usr/bin/env bash
# One device call for the KV-cache decode path (issue #15 items 2-6 on the GPU): the GPU tests
# of the KV cache, the verify kv-* cases, the decode bandwidth grid against cuMemcpyDtoD, and
# PyTorch SDPA on the non-paged decode shapes, all in the same call.
# Build here first: scripts/build-static.sh; scripts/build-gpu-tests.sh
# Then on the device with carry [".devbin-cuda"]: scripts/device-decode.sh
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
bin=/tmp/fa-decode
xz -dc .devbin-cuda/flash-attention.xz > "$bin" && chmod +x "$bin"
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-decode
log="$OUT/decode.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$log"

# 1. GPU tests: the verify matrix in fp16/bf16, the caller's-stream path against the staged one,
# a NaN cached key through the split merge.
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter "KVCacheGPUTests" \
  > "$OUT/kv-tests.log" 2>&1
echo "KV-cache GPU tests: exit $? $(grep -E 'Test run with' "$OUT/kv-tests.log" | tail -n 1)" | tee -a "$log"
grep -E "✘|failed|error" "$OUT/kv-tests.log" | head -n 20 | tee -a "$log"

# 2. verify: the kv-* cases against float64 (fp16 and bf16).
"$bin" verify --device cuda --filter kv- --json "$OUT/verify-kv.json" > "$OUT/verify-kv.log" 2>&1
echo "verify kv-: exit $? $(tail -n 1 "$OUT/verify-kv.log")" | tee -a "$log"

# 3. The decode grid: bandwidth of K and V read vs the copy bandwidth of this run.
"$bin" bench --grid decode --json "$OUT/decode.json" > "$OUT/decode.txt" 2>&1
echo "bench --grid decode: exit $? $(tail -n 1 "$OUT/decode.txt")" | tee -a "$log"

# 4. PyTorch SDPA (cuDNN, flash, efficient) on the non-paged decode shapes.
python3 benchmarks/peers/torch_sdpa.py --grid decode --json "$OUT/torch-decode.json" > "$OUT/torch-decode.txt" 2>&1
echo "torch decode: exit $?" | tee -a "$log"
