#!/usr/bin/env bash
# Device call r24 (END_S default 560 s), issue #17's record with the dq-first default and dQ staged
# by row: the flash grid (bf16, d 64/128/256, N 512/1k/2k/4k/8k/16k, causal both, forward and
# backward) for ours, then PyTorch SDPA's cuDNN and flash backends, then ours again (the spread),
# then our deterministic backward; then the Python package's CUDA tests (the C ABI and torch route
# through the same backward). Every step is capped so that the peers run whatever ours takes.
# Carry [".devbin-cuda"]: flash-attention.xz, the wheel, wheels/ (pytest-xdist, execnet).
# Output: $OUT/r24.tgz, $OUT/r24.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r24 560
grid=(--device cuda --grid flash --dtypes bf16 --seqlens 512,1024,2048,4096,8192,16384 --passes forward,backward
  --impls flash --reps 20)
CAP=110 step ours 30 "$bin" bench "${grid[@]}" --json "$work/ours.json"
CAP=170 step torch 40 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
  --impls flash,cudnn --seqlens 512,1024,2048,4096,8192,16384 --passes forward,backward --json "$work/torch.json" --quiet
CAP=110 step ours-again 30 "$bin" bench "${grid[@]}" --json "$work/ours-again.json"
CAP=60 step bwd-deterministic 15 "$bin" bench --device cuda --grid flash --dtypes bf16 \
  --seqlens 512,1024,2048,4096,8192,16384 --passes backward --impls flash --reps 10 --deterministic \
  --json "$work/bwd-deterministic.json"
install_package
CAP=170 step pytest-cuda 60 python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-cuda.log" | cut -c1-220 | tail -n 12 | tee -a "$log"
device_call_end r24
