#!/usr/bin/env bash
# Device call r28 (END_S default 570 s; steps in order of need), issues #17 and #19: every d 128
# bulk backward but unmasked dropout stages dQ by row (ALiBi and dropout under causal/window
# masks join plain), against r27's binary (flash-attention-old.xz). Checks: the ALiBi suite
# twice (r27 saw one d 256 fp16 FlashAttention-2-route case 3 % past its bound, then pass under
# memcheck), the bulk and dropout suites. Then old/new alternated on the ALiBi and dropout
# backwards (d 128, N 4k/16k), the feature costs (forward and backward, plain/ALiBi/dropout) in
# one run, and #17's grid record: ours, cuDNN and FA2 through PyTorch, ours again, the
# deterministic backward.
# Carry [".devbin-cuda"]: flash-attention.xz, flash-attention-old.xz, gpu-tests.tar.xz.
# Output: $OUT/r28.tgz, $OUT/r28.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r28 570
use_old_binary
gpu_tests 110 'AlibiHopperTests|HopperBackwardBulkTests|DropoutHopperTests'
mv "$work/gpu-tests.log.gz" "$work/gpu-tests-1.log.gz"
gpu_tests 45 'AlibiHopperTests'
alternate features 40 10 --device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi,flash-dropout --dropout 0.1 --passes forward,backward --reps 10
grid_record
device_call_end r28
