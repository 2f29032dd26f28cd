#!/usr/bin/env bash
# Builds libflashattention.so self-contained (the Swift runtime linked in) and checks it from C:
# a program compiled with `cc` against flash_attention.h alone (Tests/CABI/c_abi_check.c).
# Usage: scripts/check-c-abi.sh [scratch path, default .build-cabi]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-.build-cabi}"
swift build -c release --product flashattention -Xswiftc -static-stdlib --scratch-path "$scratch"
lib_dir="$(swift build -c release --product flashattention -Xswiftc -static-stdlib --scratch-path "$scratch" --show-bin-path)"
library="$lib_dir/libflashattention.so"

# Self-contained: no Swift runtime or Foundation among its dynamic dependencies.
if ldd "$library" | grep -E "libswift|libFoundation|libdispatch|libBlocksRuntime"; then
  echo "error: $library depends on the Swift runtime (build with -Xswiftc -static-stdlib)" >&2
  exit 1
fi
echo "== $(basename "$library"): $(du -h "$library" | cut -f1), needs: $(ldd "$library" | awk '{print $1}' | tr '\n' ' ')"

program="$scratch/c_abi_check"
cc -std=c11 -O1 -Wall -Wextra -Werror -I Sources/CFlashAttention/include Tests/CABI/c_abi_check.c \
  -L "$lib_dir" -lflashattention -lm -Wl,-rpath,"$lib_dir" -o "$program"
"$program"
