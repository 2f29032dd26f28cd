#!/usr/bin/env bash
# Packs the test bundle with the Swift runtime libraries it loads into .devbin-cuda/gpu-tests.tar.xz,
# so the GPU tests (they skip without a GPU; the device machine has no Swift toolchain) run on the
# device. Next to build-static.sh's binary it fits a device call's carry (about 25 MB).
#   scripts/build-gpu-tests.sh
# On the device (carry [".devbin-cuda"]):
#   mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt &&
#   LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter 'StreamTests|GPUAttentionTests|NonFiniteAndLargeScoreTests'
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests > /dev/null
bundle=$(ls -d .build/debug/*PackageTests.xctest | head -n 1)
stage=$(mktemp -d)
mkdir -p "$stage/lib" .devbin-cuda
strip -o "$stage/tests" "$bundle"
# The toolchain's libraries only (the system's libc, libm, libstdc++ stay the device's own).
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
ldd "$bundle" | awk '{print $3}' | grep "^$toolchain/" | while read -r library; do
  cp "$library" "$stage/lib/"
done
tar -cJf .devbin-cuda/gpu-tests.tar.xz -C "$stage" tests lib
rm -rf "$stage"
ls -l .devbin-cuda/
