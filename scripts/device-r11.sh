#!/usr/bin/env bash
# Device call r11 (END_S default 260 s): ncu (full set) of the kernels whose r10 predictions
# failed, to find what bounds them: the fp8 d 128 forward at BN 256 without turns (the default)
# and with the serial ping-pong, and the split backward's key/value kernel at d 128 without
# turns (main's). One launch each, N 16k non-causal. Binary: r10's new one.
# Output: $OUT/r11.tgz, $OUT/r11.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r11 260
fp8=(--grid custom --batch 1 --heads 16 --seqlens 16384 --head-dims 128 --causal no --once --quiet --dtypes fp8 \
  --impls flash --passes forward)
CAP=80 profile fp8-nopingpong '^flash_fwd_hopper' 1 "${fp8[@]}" --hopper-forward-tile 256x2x1
CAP=80 profile fp8-pingpong '^flash_fwd_hopper' 1 "${fp8[@]}" --hopper-forward-tile 256x2x1+pingpong
CAP=80 profile bwd-kv-d128 '^flash_bwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 16384 --head-dims 128 \
  --causal no --once --quiet --dtypes bf16 --impls flash --passes backward --hopper-backward-turns off
rm -f "$work"/*.ncu-rep.tmp
device_call_end r11
