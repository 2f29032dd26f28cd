#!/usr/bin/env bash
# Third device call of 2026-12-06's fourth session (END_S default 240 s): the final binary's
# correctness after the fp8 transpose and tile changes: verify (every dtype, then fp8) and
# compute-sanitizer memcheck and racecheck on the fp8 matrix.
# Output: $OUT/p3.tgz and $OUT/p3.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin p3 240
CAP=60 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
CAP=70 step memcheck-fp8 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only
fails memcheck-fp8
CAP=70 step racecheck-fp8 15 compute-sanitizer --tool racecheck --error-exitcode 9 "$bin" verify --device cuda --dtype fp8 --forward-only --filter d256
fails racecheck-fp8
CAP=90 step verify 15 "$bin" verify --device cuda
fails verify
device_call_end p3
