#!/usr/bin/env bash
# Device call r14 (END_S default 480 s), issue #17: the Hopper fused backward with dQ staged in
# shared memory and added by bulk reductions (`--hopper-backward-form fused-bulk`, FA_DQ_BULK)
# against the split form (the table's at d 128) and the fused form with per-thread atomics (the
# table's at d 64), one binary. Verify (bf16 and fp16) and memcheck/racecheck under fused-bulk,
# then bf16 backward, d 64/128, N 1k/4k/16k, causal both, forms in the order
# fused-bulk split fused fused split fused-bulk, PyTorch SDPA's cuDNN backward in the same call,
# then ncu of the fused-bulk d 128 kernel at N 16k.
# Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r14.tgz, $OUT/r14.log; summary:
# scripts/backward-form-summary.py DIR.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r14 480
for dtype in bfloat16 float16; do
  CAP=60 step "verify-bulk-$dtype" 10 "$bin" verify --device cuda --dtype "$dtype" --hopper-backward-form fused-bulk \
    --json "$work/verify-bulk-$dtype.json"
  fails "verify-bulk-$dtype"
done
CAP=40 step memcheck-bulk 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --hopper-backward-form fused-bulk --filter causal
fails memcheck-bulk
CAP=40 step racecheck-bulk 15 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --hopper-backward-form fused-bulk --filter d128-kv8-causal
fails racecheck-bulk
bwd=(--device cuda --grid flash --dtypes bf16 --head-dims 64,128 --seqlens 1024,4096,16384 --causal both --impls flash
  --passes backward --reps 10)
n=0
for form in fused-bulk split fused fused split fused-bulk; do
  n=$((n + 1))
  CAP=45 step "bwd-$form-$n" 12 "$bin" bench "${bwd[@]}" --hopper-backward-form "$form" --json "$work/bwd-$form-$n.json"
done
CAP=60 step torch-bwd 20 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
  --impls cudnn --seqlens 1024,4096,16384 --head-dims 64,128 --passes backward --json "$work/torch-bwd.json" --quiet
common=(--grid custom --batch 1 --heads 16 --seqlens 16384 --head-dims 128 --causal no --once --quiet --impls flash
  --passes backward --dtypes bf16)
CAP=70 profile bulk-d128 '^flash_bwd_hopper' 1 "${common[@]}" --hopper-backward-form fused-bulk
device_call_end r14
