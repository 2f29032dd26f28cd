#!/usr/bin/env bash
# Device call r12 (END_S default 150 s): ncu (full set) of the schedules r11 did not cover, to see
# whether any of our forward schedules runs the MUFU beside the tensor cores: fp8 d 128 at BN 128
# with ping-pong and intra-warpgroup overlap (FlashAttention-3's order: PV(j) and QK^T(j+1) in one
# turn), and the bf16 d 128 forward's default (BN 176, overlap, no ping-pong). N 16k non-causal,
# one launch each. Binary: r10's new one (these paths are main's). Output: $OUT/r12.tgz, r12.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r12 150
common=(--grid custom --batch 1 --heads 16 --seqlens 16384 --head-dims 128 --causal no --once --quiet --impls flash --passes forward)
CAP=60 profile fp8-bn128-pingpong-overlap '^flash_fwd_hopper' 1 "${common[@]}" --dtypes fp8 --hopper-forward-tile 128x3x2+pingpong+overlap
CAP=60 profile bf16-default '^flash_fwd_hopper' 1 "${common[@]}" --dtypes bf16
rm -f "$work"/*.ncu-rep.tmp
device_call_end r12
