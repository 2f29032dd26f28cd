#!/usr/bin/env bash
# Device call r16 (END_S default 400 s), issue #17's forward corner (d 64 causal at N <= 2k,
# 0.89x cuDNN at 1k in r15): the Hopper forward tiles through --hopper-forward-tile on the flash
# grid's d 64 causal shapes at N 512-4k, two rounds (the second reversed), cuDNN's forward on the
# same shapes in the same call; then the flash grid's forward at N 512 (every head dim, causal
# both) for ours and cuDNN (the grid point r15 did not cover).
# Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r16.tgz, $OUT/r16.log; summary:
# scripts/tile-sweep-summary.py DIR.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r16 400
tiles=(table 64x3x2+pingpong+overlap 64x4x2+pingpong+overlap 80x3x2+pingpong+overlap 96x3x2+pingpong+overlap
  128x2x2+pingpong+overlap 128x3x2+overlap 64x3x2+overlap+wg3 64x2x1+pingpong+overlap)
fwd=(--device cuda --grid flash --dtypes bf16 --head-dims 64 --seqlens 512,1024,2048,4096 --causal yes --impls flash
  --passes forward --reps 30)
round=0
for order in forward reverse; do
  round=$((round + 1))
  list=("${tiles[@]}")
  [ "$order" = reverse ] && list=($(printf '%s\n' "${tiles[@]}" | tac))
  for tile in "${list[@]}"; do
    extra=()
    [ "$tile" != table ] && extra=(--hopper-forward-tile "$tile")
    CAP=25 step "fwd-$tile-$round" 8 "$bin" bench "${fwd[@]}" "${extra[@]}" --json "$work/fwd-$tile-$round.json"
  done
done
CAP=40 step torch-d64 15 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls cudnn \
  --head-dims 64 --seqlens 512,1024,2048,4096 --causal yes --passes forward --json "$work/torch-d64.json" --quiet
CAP=30 step ours-512 10 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens 512 --passes forward,backward \
  --impls flash --reps 30 --json "$work/ours-512.json"
CAP=50 step torch-512 15 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls cudnn \
  --seqlens 512 --passes forward,backward --json "$work/torch-512.json" --quiet
device_call_end r16
