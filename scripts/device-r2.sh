#!/usr/bin/env bash
# Device call of 2026-12-06's sixth session (END_S default 540 s):
#   - #19 dropout at 8 bits a key (fa_philox.h: one Philox call per 16 keys, half the calls; SWAR
#     byte compares; the FlashAttention-2 key/value kernel shares its calls over the quad):
#     verify's dropout problems (Hopper forward, FlashAttention-2 forward with --dropout-kernels
#     sm80, the FlashAttention-2 backward), the GPU-equals-CPU mask test, then old (c7e9748,
#     16 bits a key) and new alternated: plain and dropout, d 128, N 4k/16k, causal or not,
#     forward and backward;
#   - #18 fp8 d 128 at BN 256 with and without ping-pong against the table's BN 128 tile, fp8
#     and bf16 d 128/256 beside, cuDNN's fp8 SDPA, fp8 causal;
#   - with time left: racecheck on the fp8 V transpose, memcheck on verify's dropout problems,
#     ncu of the new dropout forward.
# Output: $OUT/r2.tgz and $OUT/r2.log. Carry [".devbin-cuda"]: flash-attention.xz (new),
# flash-attention-old.xz (c7e9748), gpu-tests.tar.xz (scripts/build-gpu-tests.sh), peer-wheels/.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r2 540
use_old_binary
CAP=60 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
CAP=40 step verify-dropout-sm80 10 "$bin" verify --device cuda --filter dropout --dropout-kernels sm80
fails verify-dropout-sm80
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=60 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'DropoutMaskTests|DropoutHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 8 | tee -a "$log"
drop=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-dropout --reps 10 \
  --head-dims 128 --seqlens 4096,16384 --causal both --passes forward,backward)
alternate dropout 50 15 "${drop[@]}"
d128=(--device cuda --grid flash --head-dims 128 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 10 --dtypes fp8)
CAP=30 step fp8-d128-table-1 10 "$bin" bench "${d128[@]}" --json "$work/fp8-d128-table-1.json"
for tile in 256x2x1 256x2x1+pingpong; do
  CAP=30 step "fp8-d128-$tile" 10 "$bin" bench "${d128[@]}" --hopper-forward-tile "$tile" --json "$work/fp8-d128-$tile.json"
done
CAP=30 step fp8-d128-table-2 10 "$bin" bench "${d128[@]}" --json "$work/fp8-d128-table-2.json"
CAP=45 step fp8-bf16 15 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no \
  --impls flash --passes forward --reps 10 --dtypes fp8,bf16 --json "$work/fp8-bf16.json"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=45 step cudnn-fp8 15 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 10 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
CAP=40 step fp8-causal 15 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 4096,16384 --causal yes \
  --impls flash --passes forward --reps 10 --dtypes fp8,bf16 --json "$work/fp8-causal.json"
CAP=60 step racecheck-fp8 30 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails racecheck-fp8
CAP=40 step memcheck-dropout 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --filter dropout
fails memcheck-dropout
CAP=70 profile dropout-d128 '^flash_fwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no \
  --once --quiet --dtypes bf16 --impls flash-dropout --passes forward
rm -f "$work"/*.ncu-rep.tmp
device_call_end r2
