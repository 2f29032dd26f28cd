#!/usr/bin/env bash
# A device call that confirms a binary whose defaults changed, most important first, each step
# under the time left (END_S, default 520 s): verify of the varlen cases (the packed schedule is
# the default) and memcheck on them and on the KV-cache cases (the line-coalesced decode loader is
# the default), the Python package's CUDA tests, then the full verify. Output: $OUT/confirm.tgz and
# $OUT/confirm.log. Carry [".devbin-cuda"] as for scripts/device-validate.sh.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin confirm 520
CAP=170 step verify-varlen 30 "$bin" verify --device cuda --filter varlen --json "$work/verify-varlen.json"
fails verify-varlen
grep -c PASS "$work/verify-varlen.log" | sed 's/^/varlen cases passed so far: /' | tee -a "$log"
CAP=60 step memcheck-kv 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter kv-
CAP=110 step memcheck-varlen 30 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter varlen
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
install_package
CAP=200 step pytest-cuda 60 \
  python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)" "$work/pytest-cuda.log" | cut -c1-200 | head -n 20 | tee -a "$log"
step verify 30 "$bin" verify --device cuda --json "$work/verify.json"
fails verify 20
grep -c PASS "$work/verify.log" | sed 's/^/verify cases passed: /' | tee -a "$log"
device_call_end confirm
