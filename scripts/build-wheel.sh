#!/usr/bin/env bash
# Builds the flash-attention-swift wheel: libflashattention.so self-contained (Swift runtime linked
# in), stripped, inside a py3-none-manylinux_2_X_x86_64 wheel whose X is the newest GLIBC symbol
# version the library needs (read with objdump). The library needs only glibc, libstdc++ and
# libgcc_s, which every manylinux policy allows; NVRTC comes from the nvidia-cuda-nvrtc wheel (the
# [cuda] extra) and the driver from the system. The library is loaded with ctypes, so the wheel
# serves every Python 3 and every torch >= 2.4.
#
#   scripts/build-wheel.sh [output folder, default .build-python/dist]
#
# auditwheel (from PyPI, in .build-python/tools) then checks that the tag holds.
set -euo pipefail
cd "$(dirname "$0")/.."

dist="${1:-.build-python/dist}"
scratch=.build-cabi
python="${FLASH_ATTENTION_PYTHON:-python3}"
tools=.build-python/tools
staging=.build-python/wheel-staging

echo "== swift build (release, -static-stdlib) of libflashattention.so"
swift build -c release --product flashattention -Xswiftc -static-stdlib --scratch-path "$scratch"
bin_path="$(swift build -c release --product flashattention -Xswiftc -static-stdlib --scratch-path "$scratch" --show-bin-path)"
rm -rf "$staging"
mkdir -p "$staging" "$dist"
library="$staging/libflashattention.so"
cp "$bin_path/libflashattention.so" "$library"
strip --strip-unneeded "$library"

echo "== what it needs"
if ldd "$library" | grep -E "libswift|libFoundation|libdispatch|libBlocksRuntime"; then
  echo "error: the library depends on the Swift runtime (build with -Xswiftc -static-stdlib)" >&2
  exit 1
fi
needed="$(objdump -p "$library" | awk '/NEEDED/ {print $2}' | sort | tr '\n' ' ')"
echo "   NEEDED: $needed"
for soname in $needed; do
  case "$soname" in
    libc.so.6 | libm.so.6 | libstdc++.so.6 | libgcc_s.so.1 | ld-linux-x86-64.so.2 | libpthread.so.0 | libdl.so.2 | librt.so.1) ;;
    *)
      echo "error: $soname is not a library manylinux allows a wheel to use from the system" >&2
      exit 1
      ;;
  esac
done
glibc="$(objdump -T "$library" | grep -o 'GLIBC_[0-9]*\.[0-9]*' | sort -uV | tail -1)"
glibcxx="$(objdump -T "$library" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)"
major_minor="${glibc#GLIBC_}"
platform="manylinux_${major_minor%%.*}_${major_minor##*.}_x86_64"
echo "   newest symbol versions: $glibc, ${glibcxx:-no GLIBCXX}; platform tag $platform"
echo "   size: $(du -h "$library" | cut -f1) stripped"

echo "== tools (wheel, setuptools, auditwheel) in $tools"
if [[ ! -x "$tools/bin/python" ]]; then
  "$python" -m venv "$tools"
fi
"$tools/bin/python" -m pip install --disable-pip-version-check --quiet "setuptools>=64" wheel auditwheel

echo "== building the wheel"
rm -rf python/build python/*.egg-info
FLASH_ATTENTION_PREBUILT_LIBRARY="$PWD/$library" \
  "$tools/bin/python" -m pip wheel --disable-pip-version-check --quiet --no-deps --no-build-isolation \
  --wheel-dir "$staging" ./python
rm -rf python/build python/*.egg-info
built="$(ls "$staging"/flash_attention_swift-*-py3-none-linux_x86_64.whl)"
"$tools/bin/python" -m wheel tags --remove --platform-tag "$platform" "$built" > /dev/null
wheel="$(ls "$staging"/flash_attention_swift-*-py3-none-"$platform".whl)"
mv "$wheel" "$dist/"
wheel="$dist/$(basename "$wheel")"

echo "== auditwheel show"
"$tools/bin/auditwheel" show "$wheel" | sed 's/^/   /'
if ! "$tools/bin/auditwheel" show "$wheel" | tr '\n' ' ' | grep -q "$platform"; then
  echo "error: auditwheel does not confirm $platform for $wheel" >&2
  exit 1
fi
echo "== $wheel ($(du -h "$wheel" | cut -f1))"
