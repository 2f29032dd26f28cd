#!/usr/bin/env bash
# Device call r18 (END_S default 420 s), issues #17/#19: the backward's bulk dQ reductions with
# ALiBi and dropout (fused-bulk now the table's form for them at d 64/128, but ALiBi alone at
# d 128 unmasked). verify's ALiBi and dropout problems, the GPU suites for both features (both
# routes, forward and backward, against float64 given the mask), then the backward of plain,
# ALiBi and dropout (p 0.1) calls, bf16, d 64/128, N 4k/16k, causal both, under the table
# (fused-bulk) and under --hopper-backward-form split, in the order table split split table.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz. Output: $OUT/r18.tgz, $OUT/r18.log;
# summary: scripts/feature-cost.py on the bwd-*.json files.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r18 420
for filter in alibi dropout; do
  CAP=45 step "verify-$filter" 10 "$bin" verify --device cuda --dtype bfloat16 --filter "$filter" --json "$work/verify-$filter.json"
  fails "verify-$filter"
done
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=120 step gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'AlibiHopperTests|DropoutHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | grep -vE "Test case passing" | tail -n 12 | cut -c1-220 | tee -a "$log"
bwd=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 64,128 --seqlens 4096,16384 --causal both
  --impls flash,flash-alibi,flash-dropout --dropout 0.1 --passes backward --reps 10)
n=0
for form in auto split split auto; do
  n=$((n + 1))
  CAP=50 step "bwd-$form-$n" 12 "$bin" bench "${bwd[@]}" --hopper-backward-form "$form" --json "$work/bwd-$form-$n.json"
done
device_call_end r18
