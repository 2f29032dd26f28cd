#!/usr/bin/env bash
# Second device call of 2026-12-06's fourth session (END_S default 420 s).
#   - fp8 (#18): the V transpose with per-lane address constants (ncu in p1: the three transposing
#     warps issued 41 % of the kernel's instructions); old binary (cf1df36) and new alternated,
#     d 128/256, N 8k/16k, bf16 beside; d 256 under 128x2x1 (no ping-pong, no overlap: 0 spills)
#     and 128x2x1+overlap (p1: +27 %, but it spills); verify fp8 on the default and on 128x2x1;
#   - d 64 causal N 4k on the three-consumer tile (#17), the table's rule now;
#   - decode (#15): split counts and tiles at batch 1-4, 8k/32k, beside the read floor.
# Output: $OUT/p2.tgz and $OUT/p2.log. Carry [".devbin-cuda"] with flash-attention.xz (new) and
# flash-attention-old.xz.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin p2 420
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
CAP=60 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
CAP=60 step verify-fp8-128x2x1 10 "$bin" verify --device cuda --dtype fp8 --forward-only --hopper-forward-tile 128x2x1
fails verify-fp8-128x2x1
CAP=60 step verify-causal 10 "$bin" verify --device cuda --dtype bfloat16 --filter causal
fails verify-causal
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 20)
n=0
for order in "old new" "new old"; do
  for which in $order; do
    n=$((n + 1)); binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP=60 step "fp8-$which-$n" 20 "$binary" bench "${fp8[@]}" --dtypes fp8,bf16 --json "$work/fp8-$which-$n.json"
  done
done
d256=(--device cuda --grid flash --head-dims 256 --seqlens 4096,8192,16384 --causal both --impls flash --passes forward --reps 20 --dtypes fp8)
for tile in 128x2x1 128x2x1+overlap 128x2x1+pingpong; do
  CAP=40 step "fp8-d256-$tile" 15 "$bin" bench "${d256[@]}" --hopper-forward-tile "$tile" --json "$work/fp8-d256-$tile.json"
done
CAP=40 step "fp8-d128-128x3x2+overlap" 15 "$bin" bench "${fp8[@]}" --dtypes fp8 --head-dims 128 --hopper-forward-tile 128x3x2+overlap \
  --json "$work/fp8-d128-128x3x2+overlap.json"
d64=(--device cuda --grid flash --head-dims 64 --seqlens 2048,4096,8192 --causal yes --dtypes bf16 --impls flash --passes forward --reps 30)
CAP=30 step d64-new 10 "$bin" bench "${d64[@]}" --json "$work/d64-new.json"
CAP=30 step d64-old 10 "$old" bench "${d64[@]}" --json "$work/d64-old.json"
CAP=100 step decode-sweep 20 "$bin" bench --device cuda --grid decode --decode-batches 1,2,4 --seqlens 8192,32768 \
  --page-sizes 0 --decode-flush clean --decode-read-floor --decode-tile auto,4x6,8x3 --decode-splits 0,32,64 \
  --json "$work/decode-sweep.json"
device_call_end p2
