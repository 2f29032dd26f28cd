#!/usr/bin/env bash
# Device call r25 (END_S default 575 s): the checks, A/B and grid record planned as r21-r24, in one call, in order of need (machines were
# scarce): the GPU suites (bulk, attention, ALiBi) and verify under the dq-first default and dQ
# staged by row; the backward of plain, ALiBi and window calls under the table and under split
# (table split split table); issue #17's grid record (ours, cuDNN and FA2 through PyTorch, ours
# again, deterministic); the ALiBi/window forward; per-kernel durations of short backwards (ncu);
# compute-sanitizer on the bulk suite's GPU test; the Python CUDA tests with what time is left.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel, wheels/.
# Output: $OUT/r25.tgz, $OUT/r25.log; summaries: scripts/feature-cost.py on bwd-*.json.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r25 575
gpu_tests 60 'HopperBackwardBulkTests|GPUAttentionTests|AlibiHopperTests'
CAP=55 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
CAP=20 step verify-fp16-alibi-window 5 "$bin" verify --device cuda --dtype float16 --filter "window" --json "$work/verify-fp16-window.json"
fails verify-fp16-alibi-window
bwd=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 64,128 --seqlens 4096,16384 --causal both
  --impls flash,flash-alibi,flash-window --passes backward --reps 10)
n=0
for form in auto split split auto; do
  n=$((n + 1))
  CAP=30 step "bwd-$form-$n" 12 "$bin" bench "${bwd[@]}" --hopper-backward-form "$form" --json "$work/bwd-$form-$n.json"
done
grid_record
CAP=20 step fwd-features 10 "$bin" bench --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi,flash-window --passes forward --reps 20 --json "$work/fwd-features.json"
CAP=40 step ncu-bwd-passes 10 ncu --metrics gpu__time_duration.sum "$bin" bench --device cuda --grid flash --dtypes bf16 \
  --head-dims 64,128 --seqlens 1024,4096 --causal no --impls flash --passes backward --once
for tool in memcheck racecheck; do sanitize "$tool" 40 'HopperBackwardBulkTests/matchesReference'; done
pytest_cuda
device_call_end r25
