#!/usr/bin/env bash
# Device call r26 (END_S default 560 s; steps in order of need, the later ones skipped when the budget is short), issue #17/#19: the backward preprocess that loads four
# rows per warp before summing (blocks of 32 rows) and dQ-first for ALiBi/dropout keys that take
# it (acceptsDQFirst), against r25's binary (flash-attention-old.xz). Checks first: the GPU suites
# that run every backward path through the new preprocess (attention, bulk, dropout, varlen, the
# large-score suite whose rows take exact_row_delta), verify bf16 and fp16 varlen, memcheck on
# the large-score suite; then old/new alternated (old new new old) on the flash grid's backward at
# N 512-4k, d 64/128, and on the ALiBi/dropout backwards; ncu kernel durations of short backwards
# (as r25); the Python CUDA tests with the time left.
# Carry [".devbin-cuda"]: flash-attention.xz, flash-attention-old.xz, gpu-tests.tar.xz, the wheel,
# wheels/. Output: $OUT/r26.tgz, $OUT/r26.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r26 560
use_old_binary
gpu_tests 90 'HopperBackwardBulkTests|GPUAttentionTests|DropoutHopperTests|GPUVarlenTests|NonFiniteAndLargeScoreTests'
alternate grid 35 10 --device cuda --grid flash --dtypes bf16 --head-dims 64,128 --seqlens 512,1024,2048,4096 \
  --passes backward --impls flash --reps 20
CAP=40 step ncu-bwd-passes 10 ncu --metrics gpu__time_duration.sum "$bin" bench --device cuda --grid flash --dtypes bf16 \
  --head-dims 64,128 --seqlens 1024,4096 --causal no --impls flash --passes backward --once
CAP=50 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
alternate features 30 10 --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 64,128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi,flash-dropout --dropout 0.1 --passes backward --reps 10
sanitize memcheck 45 'NonFiniteAndLargeScoreTests'
pytest_cuda
device_call_end r26
