#!/usr/bin/env bash
# Short device call after r3 (END_S default 200 s): r3 found every Hopper dropout forward hung.
# The cause: the producer-side Philox change asked setmaxnreg for 48 + 2 x 232 registers per
# 384-thread block, more than the launch's 384 x 168, so the consumers' setmaxnreg.inc never
# returned (fixed: 40 / 232, 56 / 224 at d >= 192, and a static_assert on the pool). This call:
# verify's dropout problems on the Hopper route, then old (c7e9748) and new alternated, plain and
# dropout, d 128, N 4k/16k, causal or not, forward and backward.
# main reverted the producer-side change (919a3d0): build flash-attention.xz from branch
# dropout-producer-philox (0a61b66) for this call.
# Output: $OUT/r4.tgz and $OUT/r4.log. Carry [".devbin-cuda"]: flash-attention.xz (new),
# flash-attention-old.xz (c7e9748).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r4 200
use_old_binary
CAP=45 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
drop=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 128 --seqlens 4096,16384 --causal both --passes forward,backward)
alternate dropout 35 10 "${drop[@]}"
CAP=30 step verify-dropout-d64 10 "$bin" bench --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 \
  --impls flash,flash-dropout --reps 10 --head-dims 64 --seqlens 16384 --causal both --passes forward --json "$work/dropout-d64.json"
device_call_end r4
