#!/usr/bin/env bash
# Second device call of 2026-12-06's sixth session (END_S default 480 s):
#   - #19 dropout's Philox calls moved to the producer warpgroup's warps 1-3 (forward.cu's
#     keep_flags_ring: per key tile, every (row, call) of the block into a shared-memory ring of
#     16-bit keep flags; the consumers read their rows' flags): r2's ncu showed the consumers
#     latency-bound in the calls (issue slots 36 % busy). verify's dropout problems (both forward
#     routes), the GPU tests (mask = CPU's, 48 reference cases), racecheck and memcheck on the
#     dropout problems (the new ring and mbarriers), then old (c7e9748: 16 bits a key, calls in
#     the consumers) and new alternated: plain and dropout, d 64/128, N 4k/16k, causal or not,
#     forward and backward; ncu of the new dropout forward;
#   - #18 fp8 d 128 unmasked at BN 256 by default (r2: +10 %): verify fp8, old/new alternated
#     with bf16 beside, cuDNN's fp8 SDPA.
# Output: $OUT/r3.tgz and $OUT/r3.log. Carry [".devbin-cuda"]: flash-attention.xz (new),
# flash-attention-old.xz (c7e9748), gpu-tests.tar.xz, peer-wheels/.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r3 480
use_old_binary
CAP=60 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
CAP=40 step verify-dropout-sm80 10 "$bin" verify --device cuda --filter dropout --dropout-kernels sm80
fails verify-dropout-sm80
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=60 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'DropoutMaskTests|DropoutHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 8 | tee -a "$log"
CAP=60 step racecheck-dropout 20 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --filter dropout --forward-only
fails racecheck-dropout
CAP=40 step memcheck-dropout 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --filter dropout
fails memcheck-dropout
CAP=50 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
drop=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 64,128 --seqlens 4096,16384 --causal both --passes forward,backward)
alternate dropout 60 15 "${drop[@]}"
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 10 --dtypes fp8,bf16)
alternate fp8 40 10 "${fp8[@]}"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=45 step cudnn-fp8 15 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
CAP=70 profile dropout-d128 '^flash_fwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no \
  --once --quiet --dtypes bf16 --impls flash-dropout --passes forward
rm -f "$work"/*.ncu-rep.tmp
device_call_end r3
