#!/usr/bin/env bash
# Device call r5 (END_S default 540 s): the Hopper backward's dropout (870eb92: d 64 and 128, the
# key/value kernel's transposed keep bits and the split dQ kernel's) and, in a second binary,
# the producer-side Philox forward (branch dropout-producer-philox's change with its setmaxnreg
# fix, never run; it hung in r3 before the fix) on top of it. In order: verify's dropout problems
# on the Hopper route (new binary), plain / dropout / dropout-on-FA2 at d 128 and d 64, N 4k/16k,
# causal or not, forward and backward (one binary: ratios from one run); then the producer-side
# binary's dropout verify (a hang costs its CAP only) and forward bench; the GPU tests of
# DropoutHopperTests (both routes against float64, forward and backward); the full verify matrix;
# the d 64 bench; memcheck on a dropout backward last.
# The code is on branches (unverified on a GPU; main keeps the verified kernels): build
#   flash-attention.xz       from branch hopper-bwd-dropout (870eb92; scripts/build-static.sh,
#                            then xz -dc | xz -9e -T2 to fit the carry)
#   flash-attention-prod.xz  from branch dropout-bwd-producer (the same + the producer-side forward)
#   gpu-tests.tar.xz         from branch hopper-bwd-dropout (scripts/build-gpu-tests.sh)
# Carry [".devbin-cuda"] (about 49 MB with those three; move peer-wheels/ out). Output: $OUT/r5.tgz and $OUT/r5.log.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r5 540
prod=/tmp/fa-prod
xz -dc .devbin-cuda/flash-attention-prod.xz > "$prod" && chmod +x "$prod"
CAP=70 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
common=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --reps 10 --seqlens 4096,16384 --causal both)
CAP=100 step bench-d128 20 "$bin" bench "${common[@]}" --impls flash,flash-dropout,flash-dropout-sm80 \
  --head-dims 128 --passes forward,backward --json "$work/bench-d128.json"
CAP=45 step verify-dropout-prod 10 "$prod" verify --device cuda --filter dropout
fails verify-dropout-prod
CAP=45 step bench-prod-d128 15 "$prod" bench "${common[@]}" --impls flash,flash-dropout \
  --head-dims 128 --passes forward --json "$work/bench-prod-d128.json"
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
CAP=90 step gpu-tests 20 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing \
  --filter 'DropoutHopperTests'
grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | tail -n 8 | tee -a "$log"
CAP=100 step verify-all 30 "$bin" verify --device cuda
fails verify-all 20
CAP=60 step bench-d64 15 "$bin" bench "${common[@]}" --impls flash,flash-dropout,flash-dropout-sm80 \
  --head-dims 64 --passes forward,backward --json "$work/bench-d64.json"
CAP=50 step memcheck-bwd 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --filter dropout-causal-d128
device_call_end r5
