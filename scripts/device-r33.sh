#!/usr/bin/env bash
# Device call r33 (END_S default 400 s): heads past 256 on the GPU (issue #17 item 3). Checks
# the d = 512 forward (value groups, and `--wide-value chunks`) and backward (32 x 32 tile)
# against the float64 reference (verify, the GPU suites, the Python package's wide cases), under
# memcheck and racecheck, and times d 256 and d 512 with ours and PyTorch SDPA (cuDNN, flash,
# efficient) in the same call. Steps in order of need; the last ones fall off when time is short.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel.
# Output: $OUT/r33.tgz, $OUT/r33.log; scripts/wide-summary.py on the unpacked folder.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r33 400
CAP=30 step verify-wide 10 "$bin" verify --device cuda --filter d512 --dtype bf16
fails verify-wide
CAP=30 step verify-wide-fp16-chunks 10 "$bin" verify --device cuda --filter d512 --dtype fp16 --wide-value chunks
fails verify-wide-fp16-chunks
gpu_tests 90 'WideHeadTests|GPUAttentionTests/moreProblems'
grid=(--device cuda --grid flash --dtypes bf16 --head-dims 256,512 --seqlens 1024,4096,16384 --passes forward,backward --impls flash --reps 10)
CAP=60 step ours 20 "$bin" bench "${grid[@]}" --json "$work/ours.json"
CAP=90 step torch 30 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --head-dims 256,512 \
  --impls cudnn,flash,efficient --seqlens 1024,4096,16384 --passes forward,backward --reps 10 --json "$work/torch.json" --quiet
CAP=35 step ours-chunks 15 "$bin" bench --device cuda --grid flash --dtypes bf16 --head-dims 512 --seqlens 1024,4096,16384 \
  --passes forward --impls flash --reps 10 --wide-value chunks --json "$work/ours-chunks.json"
CAP=40 step memcheck-wide 10 compute-sanitizer --tool memcheck --print-limit 5 "$bin" verify --device cuda --filter d512 --dtype bf16
grep -E "ERROR SUMMARY" "$work/memcheck-wide.log" | tee -a "$log"
install_package
CAP=50 step pytest-wide 20 python3 -m pytest python/tests/test_numerics.py -q -p no:cacheprovider -rfE \
  -k "cuda and (d512 or d320)" -n 8
grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-wide.log" | cut -c1-220 | tail -n 8 | tee -a "$log"
CAP=40 step racecheck-wide 10 compute-sanitizer --tool racecheck --print-limit 5 "$bin" verify --device cuda --filter d512 --dtype bf16
grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$work/racecheck-wide.log" | tee -a "$log"
CAP=60 step ours-again 20 "$bin" bench "${grid[@]}" --json "$work/ours-again.json"
CAP=50 step tiles 20 "$bin" kernels --time --head-dims 512 --seqlens 4096,16384 --backward-tiles 32x32x8,64x16x8
device_call_end r33
