#!/usr/bin/env bash
# Device call r23 (END_S default 420 s), issues #17/#19: the dq-first default (r21's checks, never
# run) and dQ staged by row (FA_DQ_STAGE_ROW) for the d 128 windows and ALiBi alone unmasked, which
# now take the fused bulk backward instead of split. GPU suites (bulk, attention, ALiBi), verify
# bf16 (every fixed-length problem) and fp16 ALiBi/window problems, compute-sanitizer on the new
# variants, then the backward of plain, ALiBi and window (±1024) calls, bf16, d 128 (and d 64 as a
# control), N 4k/16k, causal both, under the table and under --hopper-backward-form split in the
# order table split split table, and the ALiBi forward beside plain.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz. Output: $OUT/r23.tgz, $OUT/r23.log;
# summary: scripts/feature-cost.py on the bwd-*.json files.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r23 420
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=110 step gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'HopperBackwardBulkTests|GPUAttentionTests|AlibiHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | grep -vE "Test case passing" | tail -n 12 | cut -c1-220 | tee -a "$log"
gzip -f "$work/gpu-tests.log"
CAP=100 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16 --json "$work/verify-bf16.json"
fails verify-bf16
for filter in alibi window; do
  CAP=25 step "verify-fp16-$filter" 5 "$bin" verify --device cuda --dtype float16 --filter "$filter" --json "$work/verify-fp16-$filter.json"
  fails "verify-fp16-$filter"
done
# The sanitizers on the bulk suite's GPU test (its window and ALiBi problems run the new variants).
for tool in memcheck racecheck; do
  CAP=60 step "$tool" 10 compute-sanitizer --tool "$tool" --print-limit 5 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests \
    --testing-library swift-testing --filter 'HopperBackwardBulkTests/matchesReference'
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed after|failed after" "$work/$tool.log" | tail -n 3 | cut -c1-200 | tee -a "$log"
done
bwd=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 64,128 --seqlens 4096,16384 --causal both
  --impls flash,flash-alibi,flash-window --passes backward --reps 10)
n=0
for form in auto split split auto; do
  n=$((n + 1))
  CAP=45 step "bwd-$form-$n" 12 "$bin" bench "${bwd[@]}" --hopper-backward-form "$form" --json "$work/bwd-$form-$n.json"
done
CAP=40 step fwd-alibi 10 "$bin" bench --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi,flash-window --passes forward --reps 20 --json "$work/fwd-alibi.json"
# Where a short backward's time goes: every kernel's duration (memset, preprocess, main, convert)
# in one backward of the flash grid's N 1k and 4k at d 64/128, non-causal.
CAP=60 step ncu-bwd-passes 10 ncu --metrics gpu__time_duration.sum "$bin" bench --device cuda --grid flash --dtypes bf16 \
  --head-dims 64,128 --seqlens 1024,4096 --causal no --impls flash --passes backward --once
grep -E "^  [a-z_]+.*\(|gpu__time_duration" "$work/ncu-bwd-passes.log" | head -n 80 | cut -c1-160 >> "$log"
device_call_end r23
