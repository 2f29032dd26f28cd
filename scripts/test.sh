#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to see: the README's test command
# and what CI runs (.ci/run calls it after installing NVRTC from PyPI).
#   1. swift test: the library, the CPU kernels (both instruction sets), the CUDA kernel compile
#      checks (when NVRTC is found), the command-line tool end to end;
#   2. the command line under random and mutated inputs (scripts/fuzz-cli.py);
#   3. the C interface from a C program (scripts/check-c-abi.sh);
#   4. a consumer package that depends on this one by version (scripts/check-consumer-package.sh);
#   5. the Python package with PyTorch and transformers (scripts/test-python.sh).
# Each step says how long it took. Set FLASH_ATTENTION_TEST_SKIP to a space-separated list of step
# names (swift fuzz c-abi consumer python) to skip steps while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
skip=" ${FLASH_ATTENTION_TEST_SKIP:-} "

run_step() {
  local name="$1"
  shift
  if [[ "$skip" == *" $name "* ]]; then
    echo "== $name: skipped (FLASH_ATTENTION_TEST_SKIP)"
    return
  fi
  local step_started=$SECONDS
  echo "== $name: $*"
  "$@"
  echo "== $name: passed in $((SECONDS - step_started)) s (total $((SECONDS - started)) s)"
}

run_step swift swift test
run_step fuzz python3 scripts/fuzz-cli.py --cli "$(swift build --show-bin-path)/flash-attention"
run_step c-abi scripts/check-c-abi.sh
run_step consumer scripts/check-consumer-package.sh
run_step python scripts/test-python.sh
echo "== all tests passed in $((SECONDS - started)) s"
