#!/usr/bin/env bash
# Device call r29 (END_S default 420 s): verify's dropout and ALiBi problems (fp16, bf16; the
# causal d 128 ones run the newly row-staged variants), the sanitizers and the Python tests on this session's
# kernels (r27-r28: the preprocess in 8-column chunks with exact rows found by ballot, the convert
# in chunks, every d 128 bulk variant but unmasked dropout staging dQ by row, the ALiBi forward's
# exact-form gate): racecheck and memcheck on the bulk suite's float64 test (ALiBi and dropout
# under masks among its problems), memcheck on the large-score suite (exact rows), then
# `pytest -k cuda` on the freshly built wheel.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel, wheels/.
# Output: $OUT/r29.tgz, $OUT/r29.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r29 420
for dtype in bfloat16 float16; do
  for filter in dropout alibi; do
    CAP=30 step "verify-$filter-$dtype" 5 "$bin" verify --device cuda --dtype "$dtype" --filter "$filter"
    fails "verify-$filter-$dtype"
  done
done
sanitize racecheck 60 'HopperBackwardBulkTests/matchesReference'
mv "$work/racecheck.log" "$work/racecheck-bulk.log"
sanitize memcheck 50 'HopperBackwardBulkTests/matchesReference'
mv "$work/memcheck.log" "$work/memcheck-bulk.log"
sanitize memcheck 50 'NonFiniteAndLargeScoreTests'
pytest_cuda
device_call_end r29
