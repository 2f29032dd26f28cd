#!/usr/bin/env bash
# Seventh device call of 2026-12-06's third session (END_S default 200 s): ALiBi on the masked
# d = 128 Hopper forward without ping-pong. Old binary (.devbin-cuda/flash-attention-old.xz, the
# ping-pong tile) and new alternated, plain and ALiBi per case; verify's ALiBi cases on the new.
# Output: $OUT/c7.tgz and $OUT/c7.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c7 200
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
CAP=60 step verify-alibi 10 "$bin" verify --device cuda --filter alibi
fails verify-alibi
n=0
for order in "old new" "new old"; do
  for which in $order; do
    n=$((n + 1))
    binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP=40 step "alibi-$which-$n" 15 "$binary" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 \
      --seqlens 4096,16384 --causal yes --impls flash,flash-alibi --passes forward --reps 30 \
      --json "$work/alibi-$which-$n.json"
  done
done
device_call_end c7
