#!/usr/bin/env bash
# The session's last device call (END_S, default 400 s): the dropout checks after the quad-shared
# Philox change (verify, the Python CUDA dropout tests, memcheck), the dropout cost, and the full
# decode grid with the default loader (pages 1/16/64/256) beside PyTorch SDPA's decode.
# Output: $OUT/last.tgz and $OUT/last.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin last 400
CAP=80 step verify-dropout 20 "$bin" verify --device cuda --filter dropout
grep -E "FAIL|UNSUPPORTED" "$work/verify-dropout.log" | cut -c1-200 | tee -a "$log"
install_package
CAP=60 step pytest-dropout 20 \
  python3 -m pytest python/tests/test_alibi_dropout.py -q -p no:cacheprovider -rfE -k cuda
CAP=70 step bench-dropout 30 "$bin" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-dropout --dropout 0.1 --passes forward,backward \
  --json "$work/dropout.json"
CAP=45 step memcheck-dropout 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter dropout
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
CAP=90 step decode-grid 30 "$bin" bench --grid decode --json "$work/decode.json"
CAP=60 step torch-decode 20 python3 benchmarks/peers/torch_sdpa.py --grid decode --json "$work/torch-decode.json"
device_call_end last
