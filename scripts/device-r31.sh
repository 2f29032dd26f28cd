#!/usr/bin/env bash
# Device call r31 (END_S default 400 s; pass less when the session's device time is short),
# issue #15's decode: the swapped 8-row tile for at most 8 packed rows (S^T = K Q^T, O^T = V^T
# P^T, lazy rescale), the line loader's affine fast path (no shuffled offsets for tiles inside
# one block) and the split bounds in 32-bit arithmetic, against main's binary
# (flash-attention-old.xz). In order of need: the KV-cache GPU suites (the verify matrix in both
# dtypes, large scores through both row tiles, the fused merge, the loaders) and verify's kv-
# cases; old and new alternated (old new new old) on batch 1/2/4/16 × 8k/32k/128k, contiguous
# and pages of 16, clean flush, the new binary timing its `auto` tile (swapped) and `4x3+m16`
# (the m16 math with the new loader) per shape; the issue's full decode grid beside PyTorch
# SDPA's decode; verify's kv- cases with `--decode-tile 4x3+m16`; memcheck on the KV-cache suite;
# a sweep of the swapped tile's warps and stages at batch 1-4; ncu's full set at 1 × 8k.
# Carry [".devbin-cuda"]: flash-attention.xz, flash-attention-old.xz, gpu-tests.tar.xz.
# Output: $OUT/r31.tgz, $OUT/r31.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r31 400
use_old_binary
gpu_tests 80 'KVCacheGPUTests|KVCacheFusedMergeGPUTests|KVCacheLoaderGPUTests'
CAP=30 step verify-kv 10 "$bin" verify --device cuda --filter kv- --json "$work/verify-kv.json"
fails verify-kv
shape=(--grid decode --decode-batches 1,2,4,16 --seqlens 8192,32768,131072 --page-sizes 0,16 --decode-flush clean)
n=0
for which in old new new old; do
  n=$((n + 1))
  if [ "$which" = old ]; then
    CAP=30 step "decode-old-$n" 15 "$old" bench --device cuda "${shape[@]}" --json "$work/decode-old-$n.json"
  else
    CAP=45 step "decode-new-$n" 15 "$bin" bench --device cuda "${shape[@]}" --decode-tile auto,4x3+m16 \
      --json "$work/decode-new-$n.json"
  fi
done
CAP=45 step decode-grid 30 "$bin" bench --device cuda --grid decode --json "$work/decode-grid.json"
CAP=50 step torch-decode 20 python3 benchmarks/peers/torch_sdpa.py --grid decode --json "$work/torch-decode.json"
CAP=30 step verify-kv-m16 10 "$bin" verify --device cuda --filter kv- --decode-tile 4x3+m16
fails verify-kv-m16
sanitize memcheck 45 'KVCacheGPUTests'
CAP=30 step decode-tiles 15 "$bin" bench --device cuda --grid decode --decode-batches 1,2,4 --seqlens 8192,32768 \
  --page-sizes 0 --decode-flush clean --decode-tile auto,8x3,8x2,4x6 --json "$work/decode-tiles.json"
CAP=60 profile decode-1x8k '^flash_decode' 1 --grid decode --decode-batches 1 --seqlens 8192 --page-sizes 0 \
  --decode-flush clean --reps 1 --warmup 1
device_call_end r31
