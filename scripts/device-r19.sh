#!/usr/bin/env bash
# Device call r19 (END_S default 240 s), issue #17's weakest head dim: ncu (full set) of the d 64
# backward's key/value kernel (fused with bulk dQ reductions, the default) at N 16k non-causal and
# at N 4k causal, one launch each, for where its cycles go.
# Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r19.tgz, $OUT/r19.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r19 240
common=(--grid custom --batch 1 --heads 32 --head-dims 64 --once --quiet --impls flash --passes backward --dtypes bf16)
CAP=90 profile bwd-d64-16k '^flash_bwd_hopper' 1 "${common[@]}" --seqlens 16384 --causal no
CAP=80 profile bwd-d64-causal-4k '^flash_bwd_hopper' 1 "${common[@]}" --seqlens 4096 --causal yes
device_call_end r19
