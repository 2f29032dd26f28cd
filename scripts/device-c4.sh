#!/usr/bin/env bash
# Fourth device call of 2026-12-06's third session (END_S default 470 s): the Python package's
# CUDA tests on the wheel of the final binary (the fused decode merge and Hopper dropout are
# defaults now; the large-score forward test is new); then the flash grid (bf16, N 1k/4k/16k,
# forward and backward) for ours and for PyTorch SDPA's cuDNN and flash backends in the same
# call; then verify's dropout cases on the sm80 route. Output: $OUT/c4.tgz and $OUT/c4.log.
# Carry [".devbin-cuda"] with the wheel and wheels/.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c4 470
install_package
CAP=200 step pytest-cuda 60 python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-cuda.log" | cut -c1-220 | tail -n 20 | tee -a "$log"
CAP=70 step ours 30 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens 1024,4096,16384 \
  --passes forward,backward --impls flash --reps 30 --json "$work/ours.json"
CAP=110 step torch 30 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
  --impls flash,cudnn --seqlens 1024,4096,16384 --passes forward,backward --json "$work/torch.json" --quiet
CAP=40 step verify-dropout-sm80 10 "$bin" verify --device cuda --filter dropout --dropout-kernels sm80
fails verify-dropout-sm80
device_call_end c4
