#!/usr/bin/env bash
# The short form of scripts/device-q1.sh (END_S default 240 s), for when little device time is
# left: each change's correctness and its old/new A/B first, at fewer shapes and repetitions.
#   - fp8 V transpose (ldmatrix.trans / stmatrix): verify fp8, memcheck, old/new d 128/256 N 16k;
#   - ALiBi's exact exponent only near the row's max: verify's ALiBi cases, the GPU large-score
#     tests (ALiBi at scores up to 1e4), old/new ALiBi and plain at d 128 N 4k/16k;
#   - with time left: cuDNN's fp8 SDPA at N 16k.
# Output: $OUT/q1s.tgz and $OUT/q1s.log. Carry [".devbin-cuda"] as for device-q1.sh.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin q1s 240
use_old_binary
CAP=40 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
CAP=30 step verify-alibi 10 "$bin" verify --device cuda --filter alibi
fails verify-alibi
CAP=30 step memcheck-fp8 10 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails memcheck-fp8
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 16384 --causal no --impls flash --passes forward --reps 10)
alternate fp8 25 10 "${fp8[@]}" --dtypes fp8,bf16
alibi=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-alibi --reps 10)
alternate alibi 25 10 "${alibi[@]}" --head-dims 128 --seqlens 4096,16384 --causal both --passes forward
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=60 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'NonFiniteAndLargeScoreTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 8 | tee -a "$log"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=40 step cudnn-fp8 15 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
device_call_end q1s
