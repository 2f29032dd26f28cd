#!/usr/bin/env bash
# Device call r20 (END_S default 200 s), issue #17: the bulk backward issuing each step's dQ GEMM
# before dV's and dK's and staging dQ while they run (`--hopper-backward-form fused-bulk-dq-first`,
# FA_DQ_FIRST) against the table's fused-bulk, one binary: verify's d 64 and d 128 problems under
# it, then bf16 backward, d 64/128, N 4k/16k, causal both, in the order fused-bulk dq-first
# dq-first fused-bulk. Carry [".devbin-cuda"]: flash-attention.xz. Output: $OUT/r20.tgz, $OUT/r20.log;
# summary: scripts/backward-form-summary.py DIR (forms compared with fused-bulk when no split ran).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r20 200
CAP=40 step verify-dq-first 10 "$bin" verify --device cuda --dtype bfloat16 --filter d128 \
  --hopper-backward-form fused-bulk-dq-first --json "$work/verify-dq-first.json"
fails verify-dq-first
CAP=20 step verify-dq-first-causal 10 "$bin" verify --device cuda --dtype float16 --filter causal \
  --hopper-backward-form fused-bulk-dq-first
fails verify-dq-first-causal
bwd=(--device cuda --grid flash --dtypes bf16 --head-dims 64,128 --seqlens 4096,16384 --causal both --impls flash
  --passes backward --reps 10)
n=0
for form in fused-bulk fused-bulk-dq-first fused-bulk-dq-first fused-bulk; do
  n=$((n + 1))
  CAP=30 step "bwd-$form-$n" 10 "$bin" bench "${bwd[@]}" --hopper-backward-form "$form" --json "$work/bwd-$form-$n.json"
done
device_call_end r20
