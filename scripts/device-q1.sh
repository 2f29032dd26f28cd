#!/usr/bin/env bash
# First device call of 2026-12-06's fifth session (END_S default 520 s), issue #18 (fp8):
#   - the V transpose by ldmatrix.trans / stmatrix (hopper/fp8.cuh; ~6.5 instead of ~45 SASS
#     instructions per 512 bytes): verify fp8, memcheck and racecheck on the fp8 matrix; the old
#     binary (5bb3321's kernels) and the new alternated, d 128/256, N 8k/16k, bf16 beside;
#   - fp8 d 128 tiles now that the transposing warps issue less: BN 256 (no overlap, with and
#     without ping-pong: 0 spills), 128 without ping-pong, 128 with neither;
#   - fp8 causal d 128/256 N 4k-16k on the new binary, bf16 beside;
#   - cuDNN's fp8 SDPA (benchmarks/peers/cudnn_fp8_sdpa.py, the carried nvidia-cudnn-frontend
#     wheel), d 128/256, N 8k/16k, causal and not;
#   - ncu (full set, per-SASS stalls) of the new fp8 forward at d 128, N 8k;
#   - #19 ALiBi: the exact exponent only on tiles near the row's max (common/softmax.cuh,
#     EXACT_EXPONENT_BAND): old and new alternated, ALiBi and plain at d 128 N 4k/16k causal and
#     not; the new binary's forward and backward at d 64/128, N 4k-16k; d 64 ALiBi on the
#     two-consumer tile (the band applies there) against the table's three-consumer one; verify.
# Output: $OUT/q1.tgz and $OUT/q1.log. Carry [".devbin-cuda"] with flash-attention.xz (new),
# flash-attention-old.xz, gpu-tests.tar.xz (scripts/build-gpu-tests.sh; the large-score tests run
# ALiBi through the band) and peer-wheels/nvidia_cudnn_frontend-*.whl; binaries at xz -9e to fit.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin q1 "${END_S_DEFAULT:-430}"
use_old_binary
CAP=60 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
CAP=60 step verify-bf16 10 "$bin" verify --device cuda --dtype bfloat16
fails verify-bf16
CAP=30 step memcheck-fp8 10 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails memcheck-fp8
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=120 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'NonFiniteAndLargeScoreTests|AlibiHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 8 | tee -a "$log"
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 20)
alternate fp8 60 20 "${fp8[@]}" --dtypes fp8,bf16
alibi=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --impls flash,flash-alibi --reps 20)
alternate alibi 50 15 "${alibi[@]}" --head-dims 128 --seqlens 4096,16384 --causal both --passes forward
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/cudnn-fe .devbin-cuda/peer-wheels/nvidia_cudnn_frontend-*.whl \
  > "$work/pip-cudnn.log" 2>&1
CAP=90 step cudnn-fp8 20 env PYTHONPATH=/tmp/cudnn-fe python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 \
  --seqlens 8192,16384 --causal no --reps 20 --json "$work/cudnn-fp8.json"
fails cudnn-fp8
d128=(--device cuda --grid flash --head-dims 128 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 20 --dtypes fp8)
for tile in 256x2x1 256x2x1+pingpong; do
  CAP=40 step "fp8-d128-$tile" 15 "$bin" bench "${d128[@]}" --hopper-forward-tile "$tile" --json "$work/fp8-d128-$tile.json"
done
CAP=60 step fp8-causal 15 "$bin" bench --device cuda --grid flash --head-dims 128,256 --seqlens 4096,8192,16384 --causal yes \
  --impls flash --passes forward --reps 20 --dtypes fp8,bf16 --json "$work/fp8-causal.json"
CAP=70 step alibi-all 15 "$bin" bench "${alibi[@]}" --head-dims 64,128 --seqlens 4096,8192,16384 --causal both \
  --passes forward,backward --json "$work/alibi-all.json"
CAP=40 step alibi-d64-2wg 15 "$bin" bench "${alibi[@]}" --head-dims 64 --seqlens 4096,16384 --causal both --passes forward \
  --hopper-forward-tile 128x3x2+pingpong+overlap --json "$work/alibi-d64-2wg.json"
# With time left (END_S above 430): racecheck and ncu of the new fp8 forward.
CAP=60 step racecheck-fp8 40 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails racecheck-fp8
CAP=90 profile fp8-d128 '^flash_fwd_hopper' 1 --grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no \
  --once --quiet --dtypes fp8 --impls flash --passes forward
rm -f "$work"/*.ncu-rep.tmp
device_call_end q1
