#!/usr/bin/env bash
# Device call r36 (END_S default 420 s), issue #19: the ALiBi forward's column part on the tensor
# cores (`--alibi-bias tensor-cores`, FA_ALIBI_MMA: one more k-step of Q K^T whose A holds the
# warp's signed slope in three parts and whose B panel holds each key's column) against the FFMA
# per score (`fma`, the default), in one binary. Checks first (the first run of a hand-built wgmma
# operand): verify's ALiBi problems in both dtypes with tensor-cores, the GPU suite's
# tensor-core test (float64 reference, the steep-slope fallback among them), memcheck on it.
# Then plain / ALiBi-fma / ALiBi-tensor forward alternated (fma tensor tensor fma), d 64/128/256,
# N 4k / 16k, causal both, forward and backward (the backward too: bf16 S^T with the bias as a k-step,
# slope and per-key remainder in A, FA_ALIBI_MMA in hopper/backward.cu). Last, r35's pending wide-head checks.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r36 420
CAP=40 step verify-alibi-tc-bf16 10 "$bin" verify --device cuda --filter alibi --dtype bf16 --alibi-bias tensor-cores
fails verify-alibi-tc-bf16
CAP=40 step verify-alibi-tc-fp16 10 "$bin" verify --device cuda --filter alibi --dtype fp16 --alibi-bias tensor-cores
fails verify-alibi-tc-fp16
gpu_tests 60 'AlibiHopperTests/tensorCoreBias'
n=0
for form in fma tensor-cores tensor-cores fma; do
  n=$((n + 1))
  CAP=70 step "alibi-$form-$n" 20 "$bin" bench --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 \
    --head-dims 64,128,256 --seqlens 4096,16384 --causal both --impls flash,flash-alibi --passes forward,backward --reps 10 \
    --alibi-bias "$form" --json "$work/alibi-$form-$n.json"
done
sanitize memcheck 40 'AlibiHopperTests/tensorCoreBias'
CAP=20 step verify-groups 5 "$bin" verify --device cuda --filter d512 --dtype bf16
CAP=20 step verify-chunks 5 "$bin" verify --device cuda --filter d512 --dtype fp16 --wide-value chunks
gpu_tests 40 'WideHeadTests|GPUAttentionTests/moreProblems'
device_call_end r36
