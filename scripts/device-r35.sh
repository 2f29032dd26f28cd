#!/usr/bin/env bash
# Device call r35 (END_S default 90 s), after 2990ad0 (the forward's launches from
# FlashAttention2Key.forwardLaunches): verify's d512 problem in both wide forms and the GPU
# suites' wide problems again.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r35 90
CAP=20 step verify-groups 5 "$bin" verify --device cuda --filter d512 --dtype bf16
CAP=20 step verify-chunks 5 "$bin" verify --device cuda --filter d512 --dtype fp16 --wide-value chunks
gpu_tests 40 'WideHeadTests|GPUAttentionTests/moreProblems'
device_call_end r35
