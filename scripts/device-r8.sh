#!/usr/bin/env bash
# Device call r8 (END_S default 250 s): main with the Hopper backward's dropout (b21321c), the
# checks r7 left short: the full verify matrix (r7's hit its cap after 47 problems, all passed)
# and the GPU tests of the dropout suites (both routes against float64, forward and backward;
# the GPU mask against the CPU's) and the ABI layout.
# Build: flash-attention.xz and gpu-tests.tar.xz from main (scripts/build-static.sh, then xz -dc
# | xz -9e -T2; scripts/build-gpu-tests.sh). Carry [".devbin-cuda"]. Output: $OUT/r8.tgz, $OUT/r8.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r8 250
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=80 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'DropoutHopperTests|DropoutMaskTests|KernelABILayoutTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 12 | tee -a "$log"
# The varlen backward fills the same parameter struct (now 768 bytes): its problems first.
CAP=60 step verify-varlen 10 "$bin" verify --device cuda --filter varlen
fails verify-varlen
CAP=150 step verify-all 30 "$bin" verify --device cuda
fails verify-all 20
device_call_end r8
