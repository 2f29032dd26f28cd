#!/usr/bin/env bash
# Device call r10 (END_S default 500 s; --hopper-backward-turns exists only with
# docs/wip/backward-turns applied), three changes in one new binary (main 8a2456e +
# docs/wip/dropout-overlap + GEMM turns), the old binary is main:
#   - #17: the Hopper backward's consumer warpgroups take turns issuing their GEMMs (the split
#     key/value kernel at d 64/128, the dQ kernel at every d; `--hopper-backward-turns off` is
#     the old code): on/off alternated on the flash grid's backward (d 64 deterministic =
#     split, d 128, d 256; N 4k/16k; causal both) and PyTorch SDPA's cuDNN backward beside
#     (verify: the d 128 problems with turns, one of them again without: the same errors
#     expected for the same seed; varlen, d 256 and the deterministic problems with turns);
#   - #18: the serial mainloop's ping-pong passes the turn after each GEMM's issue; fp8 d 128
#     (BN 256) and d 256 (BN 128) take it by default: verify --dtype fp8, then per shape the
#     default and the tile without turns alternated twice, bf16 beside, cuDNN's fp8 SDPA;
#   - #19: the dropout forward's keep bits made under the GEMMs (change 5): verify's dropout
#     problems, old and new alternated (plain and dropout forward, d 64/128, N 4k/16k).
# Then, with time left: racecheck on a split d 128 backward and on the fp8 matrix.
# Carry [".devbin-cuda"]: flash-attention.xz (new), flash-attention-old.xz (main),
# peer-wheels/nvidia_cudnn_frontend-*.whl. Output: $OUT/r10.tgz, $OUT/r10.log; summaries:
# scripts/turns-summary.py DIR, scripts/fp8-tiles-summary.py DIR, scripts/dropout-summary.py DIR dropout.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r10 500
use_old_binary
CAP=45 step verify-d128 10 "$bin" verify --device cuda --dtype bfloat16 --seed 4242 --filter d128 --json "$work/verify-d128.json"
fails verify-d128
CAP=20 step verify-d128-off 10 "$bin" verify --device cuda --dtype bfloat16 --seed 4242 --filter d128-kv8 \
  --hopper-backward-turns off --json "$work/verify-d128-off.json"
fails verify-d128-off
CAP=35 step verify-varlen 10 "$bin" verify --device cuda --dtype bfloat16 --filter varlen
fails verify-varlen
CAP=30 step verify-det-d256 10 "$bin" verify --device cuda --dtype bfloat16 --filter d256
fails verify-det-d256
CAP=20 step verify-det 10 "$bin" verify --device cuda --dtype bfloat16 --filter det
fails verify-det
bwd=(--device cuda --grid flash --dtypes bf16 --seqlens 4096,16384 --causal both --impls flash --passes backward --reps 10)
n=0
for turns in on off off on; do
  n=$((n + 1))
  CAP=40 step "bwd-$turns-$n" 10 "$bin" bench "${bwd[@]}" --head-dims 128,256 --hopper-backward-turns "$turns" \
    --json "$work/bwd-$turns-$n.json"
  CAP=25 step "bwd-det-$turns-$n" 10 "$bin" bench "${bwd[@]}" --head-dims 64 --deterministic \
    --hopper-backward-turns "$turns" --json "$work/bwd-det-$turns-$n.json"
done
CAP=25 step bwd-d64-fused 10 "$bin" bench "${bwd[@]}" --head-dims 64 --json "$work/bwd-d64-fused.json"
CAP=60 step torch-bwd 20 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
  --impls cudnn --seqlens 4096,16384 --head-dims 64,128,256 --passes backward --json "$work/torch-bwd.json" --quiet
CAP=50 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
fp8=(--device cuda --grid flash --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 10 --dtypes fp8)
for round in 1 2; do
  CAP=20 step "fp8-d128-pingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 128 --json "$work/fp8-d128-pingpong-$round.json"
  CAP=20 step "fp8-d128-nopingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 128 --hopper-forward-tile 256x2x1 \
    --json "$work/fp8-d128-nopingpong-$round.json"
  CAP=20 step "fp8-d256-pingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 256 --json "$work/fp8-d256-pingpong-$round.json"
  CAP=20 step "fp8-d256-nopingpong-$round" 8 "$bin" bench "${fp8[@]}" --head-dims 256 --hopper-forward-tile 128x2x1 \
    --json "$work/fp8-d256-nopingpong-$round.json"
done
CAP=25 step bf16 8 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no \
  --impls flash --passes forward --reps 10 --dtypes bf16 --json "$work/bf16.json"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=35 step cudnn-fp8 10 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
CAP=40 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
dropout=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 64,128 --seqlens 4096,16384 --causal both --passes forward)
alternate dropout 25 10 "${dropout[@]}"
CAP=40 step racecheck-bwd 15 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter d128-kv8-causal
fails racecheck-bwd
CAP=40 step racecheck-fp8 15 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 \
  --forward-only --filter d128
fails racecheck-fp8
device_call_end r10
