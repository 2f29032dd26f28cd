#!/usr/bin/env bash
# Device call r13 (END_S default 420 s): part of the fp8 softmax's exponentials on the FMA pipe
# (exp2_on_fma, `--fp8-exp2-fma-period N`: one chunk of four exponentials in every N; 0 = all on
# the MUFU, the default). One binary (main): verify --dtype fp8 with periods 5 and 4, then bench
# fp8 d 128/256, N 8k/16k non-causal for periods 0 8 5 4 in two rounds (the second reversed), and
# d 128 N 16k causal for 0 and 5 (0 5 5 0), then ncu of period 0 and 5 at d 128 N 16k (as r12).
# Carry [".devbin-cuda"]: flash-attention.xz, and peer-wheels/nvidia_cudnn_frontend-*.whl for the peer
# (pip download, see device-r10.sh).
# Output: $OUT/r13.tgz, $OUT/r13.log; summary: scripts/exp2-summary.py DIR (TFLOP/s per period,
# shape and round, the best against period 0's, from fp8-pP-R.json and fp8-causal-pP-R.json).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r13 420
for period in 5 4; do
  CAP=45 step "verify-fp8-p$period" 10 "$bin" verify --device cuda --dtype fp8 --forward-only \
    --fp8-exp2-fma-period "$period"
  fails "verify-fp8-p$period"
done
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward \
  --reps 10 --dtypes fp8)
round=0
for order in "0 8 5 4" "4 5 8 0"; do
  round=$((round + 1))
  for period in $order; do
    CAP=30 step "fp8-p$period-$round" 8 "$bin" bench "${fp8[@]}" --fp8-exp2-fma-period "$period" \
      --json "$work/fp8-p$period-$round.json"
  done
done
causal=(--device cuda --grid flash --head-dims 128 --seqlens 16384 --causal yes --impls flash --passes forward \
  --reps 10 --dtypes fp8)
round=0
for period in 0 5 5 0; do
  round=$((round + 1))
  CAP=15 step "fp8-causal-p$period-$round" 6 "$bin" bench "${causal[@]}" --fp8-exp2-fma-period "$period" \
    --json "$work/fp8-causal-p$period-$round.json"
done
# The peer in the same call: cuDNN's fp8 SDPA (cudnn-frontend, carried as a wheel in
# .devbin-cuda/peer-wheels/, as in device-r10.sh); skipped when the wheel is not there.
if ls .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe \
    .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl > "$work/pip-cudnn.log" 2>&1
  CAP=35 step cudnn-fp8 10 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
    --seqlens 8192,16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
  fails cudnn-fp8
fi
# ncu of one launch each, period 0 and 5, d 128 N 16k: does the MUFU now overlap the tensor pipe?
# (r12: period 0 never does.) Skipped when the time runs short.
common=(--grid custom --batch 1 --heads 16 --seqlens 16384 --head-dims 128 --causal no --once --quiet --impls flash
  --passes forward --dtypes fp8)
for period in 0 5; do
  CAP=60 profile "fp8-p$period" '^flash_fwd_hopper' 1 "${common[@]}" --fp8-exp2-fma-period "$period"
done
device_call_end r13
