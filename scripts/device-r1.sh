#!/usr/bin/env bash
# First device call of 2026-12-06's sixth session (END_S default 480 s), on main's binary
# (c7e9748's kernels), for what the fifth session planned and could not run:
#   - #18 fp8 d 128 at BN 256 (0 spills without softcap on fixed length; 215 KB of shared memory),
#     with and without ping-pong, alternated with the table's BN 128 ping-pong tile, N 8k/16k;
#   - fp8 d 256 and bf16 beside (the 1.5x ratio), fp8 causal, cuDNN's fp8 SDPA;
#   - racecheck on the new V transpose (not run last session);
#   - #19: ncu of the dropout forward at d 128 (where its instructions stall), with time left.
# Output: $OUT/r1.tgz and $OUT/r1.log. Carry [".devbin-cuda"] (flash-attention.xz, peer-wheels/).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r1 480
d128=(--device cuda --grid flash --head-dims 128 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 20 --dtypes fp8)
for round in 1 2; do
  CAP=40 step "fp8-d128-table-$round" 10 "$bin" bench "${d128[@]}" --json "$work/fp8-d128-table-$round.json"
  for tile in 256x2x1 256x2x1+pingpong; do
    CAP=40 step "fp8-d128-$tile-$round" 10 "$bin" bench "${d128[@]}" --hopper-forward-tile "$tile" \
      --json "$work/fp8-d128-$tile-$round.json"
  done
done
CAP=60 step fp8-bf16 15 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no \
  --impls flash --passes forward --reps 20 --dtypes fp8,bf16 --json "$work/fp8-bf16.json"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=60 step cudnn-fp8 15 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 20 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
CAP=60 step fp8-causal 15 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 4096,8192,16384 --causal yes \
  --impls flash --passes forward --reps 20 --dtypes fp8,bf16 --json "$work/fp8-causal.json"
CAP=70 step racecheck-fp8 30 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails racecheck-fp8
CAP=80 profile dropout-d128 '^flash_fwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no \
  --once --quiet --dtypes bf16 --impls flash-dropout --passes forward
CAP=80 profile fp8-d128-bn256 '^flash_fwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no \
  --once --quiet --dtypes fp8 --impls flash --passes forward --hopper-forward-tile 256x2x1
rm -f "$work"/*.ncu-rep.tmp
device_call_end r1
