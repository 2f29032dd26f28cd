#!/usr/bin/env bash
# Compiles every CUDA kernel variant with NVRTC (no GPU) at two commits and compares them:
# the `kernels --exhaustive --sass` reports (registers, shared memory, spills, HGMMA/UTMALDG)
# and the SASS of each variant (scripts/sass-digest.py: identical, identical but for the
# parameter offsets, or how it differs and what its hot loop holds).
#
#   scripts/kernel-report.sh BEFORE [AFTER] [OUT]     (AFTER: the working tree; OUT: /tmp/kernel-report)
#
# Needs NVRTC (pip install nvidia-cuda-nvrtc==13.0.88; FLASH_ATTENTION_NVRTC or site-packages) and
# cuobjdump (pip install nvidia-cuda-cuobjdump). BEFORE must have `kernels --dump` (96ddd2c or
# later; 96ddd2c's kernels are SASS-identical to a5d06a4, the last commit before the redesign).
set -euo pipefail
cd "$(dirname "$0")/.."
before="$1"
after="${2:-}"
out="${3:-/tmp/kernel-report}"
mkdir -p "$out"
build() {  # build REV DIR: the CLI of a commit (or of the working tree when REV is empty)
  local rev="$1" dir="$2"
  if [ -z "$rev" ]; then
    swift build --product flash-attention > /dev/null
    cp .build/debug/flash-attention "$dir/flash-attention"
  else
    rm -rf "$dir/src" && mkdir -p "$dir/src"
    git archive "$rev" | tar -x -C "$dir/src"
    (cd "$dir/src" && swift build --product flash-attention > /dev/null)
    cp "$dir/src/.build/debug/flash-attention" "$dir/flash-attention"
  fi
}
for side in before after; do
  rev="$before"; [ "$side" = after ] && rev="$after"
  mkdir -p "$out/$side"
  build "$rev" "$out/$side"
  for arch in sm_90a sm_80; do
    rm -rf "$out/$side/$arch"
    "$out/$side/flash-attention" kernels --arch "$arch" --exhaustive --sass --dump "$out/$side/$arch" \
      > "$out/$side/kernels-$arch.txt" || true
  done
done
for arch in sm_90a sm_80; do
  python3 scripts/sass-digest.py "$out/before/$arch" "$out/after/$arch" > "$out/sass-$arch.txt" || true
  tail -n 1 "$out/sass-$arch.txt"
done
echo "reports in $out"
