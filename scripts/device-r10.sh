#!/usr/bin/env bash
# Device call r10 (END_S default 420 s), two changes in one new binary (main 8a2456e +
# docs/wip/dropout-overlap + the serial ping-pong), the old binary is main:
#   - #18: the serial mainloop's ping-pong passes the turn after each GEMM's issue (it held it
#     from QK^T to PV, which serialised the warpgroups); fp8 d 128 (BN 256) and d 256 (BN 128)
#     take it by default in the new binary. verify --dtype fp8 on the defaults, then per shape
#     the default and the tile without ping-pong (the old default, the same code) alternated,
#     bf16 beside, cuDNN's fp8 SDPA;
#   - #19: the dropout forward's keep bits made under the GEMMs (change 5): verify's dropout
#     problems, old and new alternated (plain and dropout forward, d 64/128, N 4k/16k).
# Then, with time left: racecheck on the fp8 matrix (new turns), fp8 causal.
# Carry [".devbin-cuda"]: flash-attention.xz (new), flash-attention-old.xz (main),
# peer-wheels/nvidia_cudnn_frontend-*.whl. Output: $OUT/r10.tgz, $OUT/r10.log; summaries:
# scripts/dropout-summary.py DIR dropout, scripts/fp8-tiles-summary.py DIR.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r10 420
use_old_binary
CAP=60 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
fp8=(--device cuda --grid flash --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 10 --dtypes fp8)
for round in 1 2; do
  CAP=25 step "fp8-d128-pingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 128 --json "$work/fp8-d128-pingpong-$round.json"
  CAP=25 step "fp8-d128-nopingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 128 --hopper-forward-tile 256x2x1 \
    --json "$work/fp8-d128-nopingpong-$round.json"
  CAP=25 step "fp8-d256-pingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 256 --json "$work/fp8-d256-pingpong-$round.json"
  CAP=25 step "fp8-d256-nopingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 256 --hopper-forward-tile 128x2x1 \
    --json "$work/fp8-d256-nopingpong-$round.json"
done
CAP=30 step bf16 8 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no \
  --impls flash --passes forward --reps 10 --dtypes bf16 --json "$work/bf16.json"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=40 step cudnn-fp8 10 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
CAP=50 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
dropout=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 64,128 --seqlens 4096,16384 --causal both --passes forward)
alternate dropout 40 10 "${dropout[@]}"
CAP=60 step racecheck-fp8 20 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails racecheck-fp8
CAP=40 step fp8-causal 10 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 4096,16384 --causal yes \
  --impls flash --passes forward --reps 10 --dtypes fp8,bf16 --json "$work/fp8-causal.json"
device_call_end r10
