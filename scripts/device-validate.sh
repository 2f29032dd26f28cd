#!/usr/bin/env bash
# A device call that checks correctness end to end, most important first, each step under the
# time left (END_S, default 540 s): the Python package's whole CUDA test set (`pytest -k cuda`,
# the pass count issue #14 asks for; pytest-xdist spreads it over a few processes when its wheel
# is carried), the GPU test bundle's large-score / NaN / fp8 / stream suites, the one-GPU
# context-parallel check (scripts/device-context-parallel.sh), fp8 verify, the decode grid with
# the automatic split count, compute-sanitizer memcheck on the varlen cases, and full verify.
# Everything lands in $OUT/validate.tgz plus $OUT/validate.log (a call returns at most 8 files).
# Carry [".devbin-cuda"]: flash-attention.xz (scripts/build-static.sh), gpu-tests.tar.xz
# (scripts/build-gpu-tests.sh), the wheel (scripts/build-wheel.sh, copied in) and optionally
# wheels/ (pytest-xdist, execnet).
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin validate 540
install_package
parallel=()
python3 -c "import xdist" 2> /dev/null && parallel=(-n "${PYTEST_WORKERS:-6}")
CAP="${PYTEST_S:-300}" step pytest-cuda 60 python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda "${parallel[@]}"
grep -E "^(FAILED|ERROR)" "$work/pytest-cuda.log" | cut -c1-200 | head -n 40 | tee -a "$log"
tail -n 1 "$work/pytest-cuda.log" | tee -a "$log"
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib CAP=150 step gpu-tests 40 /tmp/gt/tests --testing-library swift-testing \
  --filter "${TEST_FILTER:-NonFinite|Float8|Stream|GPUAttention}"
grep -E "✘|recorded an issue" "$work/gpu-tests.log" | cut -c1-300 | head -n 30 | tee -a "$log"
grep -E "↳" "$work/gpu-tests.log" | cut -c1-240 | head -n 20 | tee -a "$log"
OUT="$work/cp" CAP=120 step context-parallel 40 bash scripts/device-context-parallel.sh
tail -n 30 "$work/cp/context-parallel.log" 2>/dev/null | tee -a "$log"
CAP=60 step verify-fp8 20 "$bin" verify --device cuda --dtype fp8 --forward-only --json "$work/verify-fp8.json"
grep -E "FAIL" "$work/verify-fp8.log" | cut -c1-200 | head -n 10 | tee -a "$log"
CAP=60 step decode-default 20 "$bin" bench --grid decode --json "$work/decode-default.json"
grep -E "copy|median|lowest" "$work/decode-default.log" | tail -n 5 | tee -a "$log"
CAP=100 step memcheck-varlen 30 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter varlen
grep -E "ERROR SUMMARY" "$work/memcheck-varlen.log" | tee -a "$log"
step verify 30 "$bin" verify --device cuda --json "$work/verify.json"
grep -E "FAIL|UNSUPPORTED" "$work/verify.log" | cut -c1-200 | head -n 20 | tee -a "$log"
device_call_end validate
