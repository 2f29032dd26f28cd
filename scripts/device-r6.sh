#!/usr/bin/env bash
# Device call r6 (END_S default 300 s): ALiBi's bias as the QK^T accumulator's start value in the
# Hopper forward (branch alibi-acc-init: the per-score FFMA moves out of the softmax, before the
# warpgroup's K wait and ping-pong turn). verify's ALiBi problems on the new binary, then old
# (main) and new alternated: plain and ALiBi, d 128 and 64, N 4k/16k, causal or not, forward.
# Build: flash-attention.xz from branch alibi-acc-init, flash-attention-old.xz from main
# (scripts/build-static.sh each; xz -dc | xz -9e -T2). Carry [".devbin-cuda"].
# Output: $OUT/r6.tgz and $OUT/r6.log; summary: scripts/dropout-summary.py DIR alibi.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r6 300
use_old_binary
CAP=60 step verify-alibi 10 "$bin" verify --device cuda --filter alibi
fails verify-alibi
alibi=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-alibi --reps 10 \
  --head-dims 64,128 --seqlens 4096,16384 --causal both --passes forward)
alternate alibi 50 10 "${alibi[@]}"
device_call_end r6
