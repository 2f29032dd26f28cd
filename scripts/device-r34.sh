#!/usr/bin/env bash
# Device call r34 (END_S default 150 s), after r33: the GPU suite's wide problems with ALiBi and
# dropout (d 512) against the float64 reference, and the d 512 forward's tile: 64 keys (the
# table's, 200 KB) against 32 (133 KB), alternated.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz.
# Output: $OUT/r34.tgz, $OUT/r34.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r34 150
gpu_tests 50 'GPUAttentionTests/moreProblems'
fwd=(--device cuda --grid flash --dtypes bf16 --head-dims 512 --seqlens 4096,16384 --passes forward --impls flash --reps 10)
for round in 1 2; do
  CAP=25 step "bn64-$round" 10 "$bin" bench "${fwd[@]}" --json "$work/bn64-$round.json"
  CAP=25 step "bn32-$round" 10 "$bin" bench "${fwd[@]}" --forward-tile 64x32x4 --json "$work/bn32-$round.json"
done
grep -h "forward " "$work"/bn*.log | cut -c1-150 | tee -a "$log"
device_call_end r34
