#!/usr/bin/env bash
# Sixth device call of 2026-12-06's third session (END_S default 150 s): the decode kernel's exact
# exponent, A/B in one call: the binary before it (.devbin-cuda/flash-attention-old.xz, decode.cu
# of e8bfc53) and after (1a49a1f), alternated in two rounds of opposite order, decode grid at
# batch 1/4/16, caches 8k/32k. Output: $OUT/c6.tgz and $OUT/c6.log. Carry [".devbin-cuda"].
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin c6 150
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
for order in "old new" "new old"; do
  for which in $order; do
    binary="$bin"; [ "$which" = old ] && binary="$old"
    n=$(ls "$work" | grep -c "^decode-$which")
    CAP=40 step "decode-$which-$n" 15 "$binary" bench --grid decode --decode-batches 1,4,16 --seqlens 8192,32768 \
      --page-sizes 0 --json "$work/decode-$which-$n.json"
  done
done
device_call_end c6
