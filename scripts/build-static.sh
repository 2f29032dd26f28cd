#!/usr/bin/env bash
# Builds the statically linked release binary, strips it and compresses it into
# .devbin-cuda/flash-attention.xz (git-ignored via .git/info/exclude: echo /.devbin-cuda/ >>
# .git/info/exclude), small enough for a device call's 64 MiB carry; device-check.sh unpacks it.
#   scripts/build-static.sh [scratch-path]      (default .build-static)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-.build-static}"
swift build -c release --static-swift-stdlib --product flash-attention --scratch-path "$scratch"
mkdir -p .devbin-cuda
strip -o .devbin-cuda/flash-attention "$scratch/release/flash-attention"
xz -T2 -1 -f .devbin-cuda/flash-attention
ls -l .devbin-cuda/
