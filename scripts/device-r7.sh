#!/usr/bin/env bash
# Device call r7 (END_S default 420 s): the Hopper backward's dropout (d 64 and 128: the
# key/value kernel's transposed keep bits, the split dQ kernel's quad keep bits) and ALiBi's bias
# as the QK^T accumulator's start in the Hopper forward, both in one new binary; the old binary
# is main before them (07c34dd); the prod binary is the new one plus the producer-side Philox
# forward (keep_flags_ring; never run: a hang costs its CAP only). In order of what matters if
# time runs out: verify's dropout problems (the Hopper backward route), plain / dropout /
# dropout-on-FA2 at d 128, N 4k/16k, causal or not, forward and backward (one binary: ratios
# from one run); the prod binary's dropout verify and forward bench; verify's ALiBi problems;
# plain and ALiBi forward at d 128, old and new alternated; d 64 dropout; the full verify
# matrix; memcheck on a dropout backward.
# Build: flash-attention.xz from main + docs/wip/hopper-bwd-dropout-alibi-acc, -prod.xz from
# that + docs/wip/dropout-producer, -old.xz from 07c34dd (scripts/build-static.sh each; xz -dc |
# xz -9e -T2). Carry [".devbin-cuda"] (about 46 MB).
# Output: $OUT/r7.tgz and $OUT/r7.log; summaries: scripts/feature-cost.py FILE.json,
# scripts/dropout-summary.py DIR alibi.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin r7 420
use_old_binary
CAP=70 step verify-dropout 10 "$bin" verify --device cuda --filter dropout
fails verify-dropout
common=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --reps 10 --seqlens 4096,16384 --causal both)
CAP=100 step bench-d128 20 "$bin" bench "${common[@]}" --impls flash,flash-dropout,flash-dropout-sm80 \
  --head-dims 128 --passes forward,backward --json "$work/bench-d128.json"
prod=/tmp/fa-prod
xz -dc .devbin-cuda/flash-attention-prod.xz > "$prod" && chmod +x "$prod"
CAP=40 step verify-dropout-prod 10 "$prod" verify --device cuda --filter dropout
fails verify-dropout-prod
CAP=45 step bench-prod 15 "$prod" bench "${common[@]}" --impls flash,flash-dropout --head-dims 64,128 \
  --passes forward --json "$work/bench-prod.json"
CAP=50 step verify-alibi 10 "$bin" verify --device cuda --filter alibi
fails verify-alibi
alternate alibi 40 10 "${common[@]}" --impls flash,flash-alibi --head-dims 128 --passes forward
CAP=60 step bench-d64 15 "$bin" bench "${common[@]}" --impls flash,flash-dropout,flash-dropout-sm80 \
  --head-dims 64 --passes forward,backward --json "$work/bench-d64.json"
CAP=90 step verify-all 30 "$bin" verify --device cuda
fails verify-all 20
CAP=50 step memcheck-bwd 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --filter dropout-causal-d128
device_call_end r7
