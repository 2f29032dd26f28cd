#!/usr/bin/env bash
# Device call r30 (END_S default 240 s; written 2026-12-07, not run: the session's device time was spent), issue #19: ncu's full set on one forward launch of the
# plain and the ALiBi Hopper forward, bf16, d 128, N 16k causal (b 1, h 16), to see whether the
# consumers' issue slots (the softmax) or the tensor pipe bound them (ALiBi costs 11-22 % there).
# Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r30.tgz, $OUT/r30.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r30 240
shape=(--grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 --seqlens 16384 --causal yes
  --passes forward --once)
CAP=80 profile fwd-plain '^flash_fwd_hopper' 1 "${shape[@]}" --impls flash
CAP=80 profile fwd-alibi '^flash_fwd_hopper' 1 "${shape[@]}" --impls flash-alibi
device_call_end r30
