#!/usr/bin/env bash
# Device call r9 (END_S default 240 s): the dropout forward's keep bits made while the GEMMs run
# (docs/wip/dropout-overlap: `keep_start` right after QK^T / P V are issued, dropout keys on
# BN <= 128 and two consumers). verify's dropout problems on the new binary (a failure stops
# nothing else: the old binary's numbers still come), then old (main) and new alternated:
# plain and dropout forward, d 128 and 64, N 4k/16k, causal or not.
# Build: flash-attention.xz from main + `git am docs/wip/dropout-overlap/*.patch`,
# flash-attention-old.xz from main (scripts/build-static.sh each; xz -dc | xz -9e -T2).
# Carry [".devbin-cuda"]. Output: $OUT/r9.tgz and $OUT/r9.log; summary:
# scripts/dropout-summary.py DIR dropout.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r9 240
use_old_binary
CAP=50 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
dropout=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 64,128 --seqlens 4096,16384 --causal both --passes forward)
alternate dropout 40 10 "${dropout[@]}"
device_call_end r9
