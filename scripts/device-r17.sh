#!/usr/bin/env bash
# Device call r17 (END_S default 480 s): the checks of the backward's new default (fused with
# bulk dQ reductions at d 64/128) beyond verify, and two measurements for issue #17:
#   - the Swift GPU suites that run the backward (HopperBackwardBulkTests: fused-bulk on odd
#     shapes; GPUAttentionTests: the verify matrix and more, both forward families);
#   - the Python package's CUDA tests (torch autograd through the library);
#   - the deterministic backward on the flash grid (split form), beside the default's;
#   - ncu of the d 64 causal forward at N 1k (the forward's weak corner, r16): where its cycles go.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel, wheels/ (pytest-xdist,
# execnet). Output: $OUT/r17.tgz, $OUT/r17.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r17 480
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=150 step gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'HopperBackwardBulkTests|GPUAttentionTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | grep -vE "^✔ Test case|Test case passing" | tail -n 12 | cut -c1-220 | tee -a "$log"
install_package
CAP=200 step pytest-cuda 60 python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-cuda.log" | cut -c1-220 | tail -n 12 | tee -a "$log"
CAP=50 step bwd-deterministic 15 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens 1024,4096,16384 \
  --passes backward --impls flash --reps 10 --deterministic --json "$work/bwd-deterministic.json"
common=(--grid custom --batch 16 --heads 32 --seqlens 1024 --head-dims 64 --causal yes --once --quiet --impls flash
  --passes forward --dtypes bf16)
CAP=60 profile fwd-d64-causal-1k '^flash_fwd_hopper' 1 "${common[@]}"
device_call_end r17
