#!/usr/bin/env bash
# Device call r13 (END_S default 150 s): one fp8 exponential in eight on the FMA pipe
# (exp2_on_fma). verify --dtype fp8 on the new binary (main + docs/wip/fp8-exp2-fma), then old (main) and new
# alternated, fp8 d 128/256, N 8k/16k non-causal, and a causal pair. Carry [".devbin-cuda"]:
# flash-attention.xz (new), flash-attention-old.xz. Output: $OUT/r13.tgz, $OUT/r13.log; summary:
# the alternated JSONs (fp8-{old,new}-N.json, fp8-causal-*), median TFLOP/s per binary.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r13 150
use_old_binary
CAP=45 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward \
  --reps 10 --dtypes fp8)
alternate fp8 25 8 "${fp8[@]}"
causal=(--device cuda --grid flash --head-dims 128 --seqlens 16384 --causal yes --impls flash --passes forward \
  --reps 10 --dtypes fp8)
alternate fp8-causal 15 8 "${causal[@]}"
device_call_end r13
