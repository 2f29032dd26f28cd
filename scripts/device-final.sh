#!/usr/bin/env bash
# The session's closing device call: every GPU check of the features merged this session, most
# important first, each step under the time left (END_S, default 520 s), skipped where the binary
# lacks the feature. Everything lands in one tarball, $OUT/final.tgz, plus $OUT/final.log (the
# device returns at most 8 files).
# Carry [".devbin-cuda"] holding: flash-attention.xz (scripts/build-static.sh), gpu-tests.tar.xz
# (scripts/build-gpu-tests.sh) and, for the Python steps, the package wheel (scripts/build-wheel.sh,
# copied in as flash_attention_swift-*.whl).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin final 520
has() { "$bin" "$1" --help 2>&1 | grep -q -- "$2"; }

step verify 60 "$bin" verify --device cuda --json "$work/verify.json"
grep -E "FAIL|UNSUPPORTED" "$work/verify.log" | cut -c1-160 | head -n 30 | tee -a "$log"
if has verify fp8; then
  step verify-fp8 40 "$bin" verify --device cuda --dtype fp8 --forward-only --json "$work/verify-fp8.json"
  grep -E "FAIL" "$work/verify-fp8.log" | cut -c1-160 | head -n 20 | tee -a "$log"
fi
if ls .devbin-cuda/*.whl > /dev/null 2>&1; then
  install_package
  CAP="${PYTEST_S:-170}" step pytest-cuda 60 python3 -m pytest python/tests -q -p no:cacheprovider \
    --maxfail=30 -k cuda
  grep -E "^FAILED|passed|failed" "$work/pytest-cuda.log" | tail -n 12 | tee -a "$log"
  CAP=60 step training-step 30 python3 python/benchmarks/training_step.py --steps 10 --out "$work"
  CAP=40 step overhead 20 python3 python/benchmarks/overhead.py --device cuda --rounds 20 --json "$work/overhead.json"
fi
if has bench "varlen"; then
  step bench-varlen 40 "$bin" bench --device cuda --grid varlen --json "$work/varlen.json"
  grep -iE "ratio|geomean|fixed" "$work/bench-varlen.log" | head -n 20 | tee -a "$log"
  grep -q "varlen" benchmarks/peers/torch_sdpa.py && step torch-varlen 30 python3 benchmarks/peers/torch_sdpa.py \
    --device cuda --grid varlen --json "$work/torch-varlen.json"
fi
step torch-decode 30 python3 benchmarks/peers/torch_sdpa.py --grid decode --json "$work/torch-decode.json"
# The decode merge rewrite and the split/tile sweep (predictions in docs/perf-notes/cuda-decode.md).
CAP=60 step decode-sweep 30 "$bin" bench --grid decode --decode-batches 1,4 --seqlens 8192,32768,131072 --page-sizes 0,16 \
  --decode-splits 0,16,32,64 --decode-tile auto,2x6,4x6 --json "$work/decode-sweep.json"
CAP=30 step decode-keep-l2 20 "$bin" bench --grid decode --decode-batches 1,4 --seqlens 131072 --page-sizes 0 --decode-keep-l2
if has bench "alibi"; then
  step bench-alibi 40 "$bin" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 --seqlens 4096,16384 \
    --impls flash --passes forward,backward --alibi --json "$work/alibi.json"
fi
if has verify fp8; then
  for dtype in fp8 bf16; do
    step "bench-$dtype" 40 "$bin" bench --device cuda --dtypes "$dtype" --head-dims 128,256 --seqlens 8192,16384 \
      --causal both --passes forward --impls flash --json "$work/bench-$dtype.json"
  done
fi
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib step gpu-tests 40 /tmp/gt/tests --testing-library swift-testing \
  --filter "${TEST_FILTER:-Stream|NonFinite|Float8|Varlen|KVCache|Alibi|Dropout}"
grep -E "✘" "$work/gpu-tests.log" | cut -c1-240 | head -n 20 | tee -a "$log"
step memcheck 30 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --dtype bfloat16 \
  --filter "${SANITIZE_FILTER:-varlen}"
grep -E "ERROR SUMMARY" "$work/memcheck.log" | tee -a "$log"
if ls .devbin-cuda/*.whl > /dev/null 2>&1; then
  step cp-simulated 30 python3 python/benchmarks/context_parallel.py --json "$work/context_parallel.json"
fi
device_call_end final
