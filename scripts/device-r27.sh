#!/usr/bin/env bash
# Device call r27 (END_S default 570 s; steps in order of need), issues #19 and #17: the Hopper
# forward's ALiBi tiles far from the diagonal no longer take the exact-exponent form (their
# offset is large from the bias alone; ALIBI_EXACT_RANGE), and the plain d 128 backwards stage
# dQ by row (stagesByRow), against main's binary (flash-attention-old.xz). Checks first: the GPU
# suites of ALiBi (both routes against float64), large scores (ALiBi among them), the bulk
# backward (every staging) and attention; verify's ALiBi problems and its bf16 matrix. Then old
# and new alternated (old new new old): ALiBi and plain forward + backward at d 128 (and the
# d 64 forward, whose causal tile is the three-consumer one), N 4k / 16k; the plain backward at
# d 128, N 1k-16k, and ncu's kernel durations of short backwards (the preprocess and the dQ convert now move
# 8-column chunks with 16-byte loads). Then, for #15, ncu's full set on one decode launch at batch 1 and 4 x 8k keys.
# Carry [".devbin-cuda"]: flash-attention.xz, flash-attention-old.xz, gpu-tests.tar.xz.
# Output: $OUT/r27.tgz, $OUT/r27.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r27 570
use_old_binary
gpu_tests 130 'AlibiHopperTests|NonFiniteAndLargeScoreTests|HopperBackwardBulkTests|GPUAttentionTests|GPUVarlenTests'
CAP=40 step verify-alibi 10 "$bin" verify --device cuda --filter alibi
fails verify-alibi
alternate alibi 40 10 --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi --passes forward,backward --reps 10
alternate alibi-d64 20 10 --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 64 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi --passes forward --reps 10
alternate bwd 45 10 --device cuda --grid flash --dtypes bf16 --head-dims 64,128 --seqlens 1024,4096,16384 \
  --passes backward --impls flash --reps 20
for which in old new; do
  binary="$bin"; [ "$which" = old ] && binary="$old"
  CAP=25 step ncu-bwd-passes-$which 10 ncu --metrics gpu__time_duration.sum "$binary" bench --device cuda --grid flash \
    --dtypes bf16 --head-dims 64,128 --seqlens 1024,4096 --causal no --impls flash --passes backward --once
done
profile decode-1x8k '^flash_decode' 1 --grid decode --decode-batches 1 --seqlens 8192 --page-sizes 0 \
  --decode-flush clean --reps 1 --warmup 1
profile decode-4x8k '^flash_decode' 1 --grid decode --decode-batches 4 --seqlens 8192 --page-sizes 0 \
  --decode-flush clean --reps 1 --warmup 1
CAP=60 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
sanitize memcheck 40 'AlibiHopperTests'
device_call_end r27
