#!/usr/bin/env bash
# Device call r15 (END_S default 450 s), issue #17's grid after the backward's table took the
# fused form with bulk dQ reductions at d 64/128: verify (bf16, the whole matrix: the default
# route), then the flash grid (bf16, d 64/128/256, N 1k/4k/16k, causal both, forward and
# backward) for ours and PyTorch SDPA's cuDNN and flash backends in the same call (as c4), and
# ours once more after the peers (the spread between our two runs).
# Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r15.tgz, $OUT/r15.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r15 450
CAP=120 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
CAP=80 step ours 30 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens 1024,4096,16384 \
  --passes forward,backward --impls flash --reps 30 --json "$work/ours.json"
CAP=120 step torch 30 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
  --impls flash,cudnn --seqlens 1024,4096,16384 --passes forward,backward --json "$work/torch.json" --quiet
CAP=80 step ours-again 30 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens 1024,4096,16384 \
  --passes forward,backward --impls flash --reps 30 --json "$work/ours-again.json"
device_call_end r15
