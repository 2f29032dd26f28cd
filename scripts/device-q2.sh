#!/usr/bin/env bash
# Last device call of 2026-12-06's fifth session (END_S default 110 s), the final binary (the
# ldmatrix/stmatrix fp8 transpose; ALiBi's exact-exponent band reverted after q1s): racecheck on
# the fp8 matrix; fp8 and bf16 forward at d 128/256, N 8k/16k non-causal and 16k causal; fp8 d 128
# at BN 256 (no overlap, with and without ping-pong); cuDNN's fp8 SDPA on the same shapes.
# Output: $OUT/q2.tgz and $OUT/q2.log. Carry [".devbin-cuda"] (flash-attention.xz, peer-wheels/).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin q2 110
CAP=25 step racecheck-fp8 10 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails racecheck-fp8
CAP=30 step fp8-final 10 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no \
  --impls flash --passes forward --reps 10 --dtypes fp8,bf16 --json "$work/fp8-final.json"
CAP=15 step fp8-causal 8 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 16384 --causal yes \
  --impls flash --passes forward --reps 10 --dtypes fp8,bf16 --json "$work/fp8-causal.json"
for tile in 256x2x1 256x2x1+pingpong; do
  CAP=10 step "fp8-d128-$tile" 6 "$bin" bench --device cuda --grid flash --head-dims 128 --seqlens 16384 --causal no \
    --impls flash --passes forward --reps 10 --dtypes fp8 --hopper-forward-tile "$tile" --json "$work/fp8-d128-$tile.json"
done
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=30 step cudnn-fp8 10 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal both --reps 10 --json "$work/cudnn-fp8.json"
device_call_end q2
