#!/usr/bin/env bash
# One device call for the decode loaders (issue #15 item 6, docs/perf-notes/cuda-decode.md
# "Loaders"): correctness of the bulk and line-coalesced loaders (verify kv-*, the GPU suite,
# compute-sanitizer memcheck), then the three loaders alternated per shape in one bench window,
# then the stage sweep of the bulk loader.
# Build here first: scripts/build-static.sh; scripts/build-gpu-tests.sh
# Then on the device with carry [".devbin-cuda"]: scripts/device-decode-loaders.sh
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
bin=/tmp/fa-decode
xz -dc .devbin-cuda/flash-attention.xz > "$bin" && chmod +x "$bin"
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-decode
log="$OUT/loaders.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$log"

# 1. verify kv-* through each loader (fp16 and bf16, NaN in every unused slot and page).
for loader in cpasync bulk cpasync-lines; do
  "$bin" verify --device cuda --filter kv- --decode-loader "$loader" --json "$OUT/verify-kv-$loader.json" \
    > "$OUT/verify-kv-$loader.log" 2>&1
  echo "verify kv- $loader: exit $? $(head -n 1 "$OUT/verify-kv-$loader.log" | cut -c1-120) | $(tail -n 1 "$OUT/verify-kv-$loader.log")" | tee -a "$log"
done

# 2. compute-sanitizer memcheck on the new loaders (out-of-bounds reads of the cache, pages).
if command -v compute-sanitizer > /dev/null; then
  for loader in bulk cpasync-lines; do
    compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --filter kv- \
      --decode-loader "$loader" > "$OUT/memcheck-$loader.log" 2>&1
    echo "memcheck $loader: exit $? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-$loader.log" | tail -n 1)" | tee -a "$log"
  done
else
  echo "compute-sanitizer not found" | tee -a "$log"
fi

# 3. The GPU suite: every loader against the default with the same seed (same errors expected).
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter "KVCacheLoaderGPUTests" \
  > "$OUT/loader-tests.log" 2>&1
echo "loader GPU tests: exit $? $(grep -E 'Test run with' "$OUT/loader-tests.log" | tail -n 1)" | tee -a "$log"
grep -E "✘|failed|error" "$OUT/loader-tests.log" | head -n 20 | tee -a "$log"

# 4. The loaders alternated per shape in one window (bf16, d 128, GQA 32/8, one query token).
"$bin" bench --grid decode --decode-batches 1,4,16,64 --seqlens 8192,32768,131072 --page-sizes 0,16,1 \
  --decode-loader cpasync,bulk,cpasync-lines --json "$OUT/decode-loaders.json" > "$OUT/decode-loaders.txt" 2>&1
echo "bench loaders: exit $? $(tail -n 1 "$OUT/decode-loaders.txt")" | tee -a "$log"

# 5. Bytes in flight with each loader: the table's tile against deeper rings (2x6: two CTAs per
# SM, 20 tiles in flight; 4x6: one CTA, 20 tiles; 8x3: one CTA, 16 tiles).
"$bin" bench --grid decode --decode-batches 4,16 --seqlens 32768,131072 --page-sizes 0 \
  --decode-tile auto,2x6,4x6,8x3 --decode-loader cpasync,bulk,cpasync-lines --json "$OUT/decode-stages.json" \
  > "$OUT/decode-stages.txt" 2>&1
echo "bench stages: exit $? $(tail -n 1 "$OUT/decode-stages.txt")" | tee -a "$log"
