"""Builds the package with libflashattention.so inside it.

`pip install ./python` runs `swift build` for the self-contained library (the Swift runtime
linked in, so it needs only glibc and libstdc++) and puts it next to the Python files. A
prebuilt library can be given instead with FLASH_ATTENTION_PREBUILT_LIBRARY (what
scripts/build-wheel.sh does). The library is loaded with ctypes, not as a Python extension, so
the wheel is tagged py3-none-<platform>: one wheel for every Python 3 and every torch >= 2.4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

LIBRARY = "libflashattention.so"
PACKAGE = "flash_attention_swift"
HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
SWIFT_BUILD = ["swift", "build", "-c", "release", "--product", "flashattention", "-Xswiftc", "-static-stdlib"]


def build_library() -> Path:
    """Runs swift build in the repository that holds this folder; returns the library's path."""
    if not (REPOSITORY / "Package.swift").is_file():
        raise RuntimeError(
            f"{REPOSITORY} holds no Package.swift: build from the repository's python/ folder, "
            "or set FLASH_ATTENTION_PREBUILT_LIBRARY to a libflashattention.so"
        )
    if shutil.which("swift") is None:
        raise RuntimeError(
            "building flash-attention-swift from source needs the Swift toolchain (swift build); "
            "install a wheel instead, or set FLASH_ATTENTION_PREBUILT_LIBRARY to a libflashattention.so"
        )
    scratch = os.environ.get("FLASH_ATTENTION_SWIFT_SCRATCH", str(REPOSITORY / ".build-cabi"))
    command = SWIFT_BUILD + ["--scratch-path", scratch]
    subprocess.run(command, cwd=REPOSITORY, check=True)
    bin_path = subprocess.run(
        command + ["--show-bin-path"], cwd=REPOSITORY, check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(bin_path) / LIBRARY


class BuildWithLibrary(build_py):
    """build_py, then the library copied (and stripped of debug symbols) into the package."""

    def run(self) -> None:
        super().run()
        prebuilt = os.environ.get("FLASH_ATTENTION_PREBUILT_LIBRARY")
        source = Path(prebuilt) if prebuilt else build_library()
        target = Path(self.build_lib) / PACKAGE / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        if not prebuilt and shutil.which("strip"):
            subprocess.run(["strip", "--strip-unneeded", str(target)], check=True)


class BinaryDistribution(Distribution):
    """Carries a native library: files go to platlib, the wheel gets a platform tag."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """A platform wheel that any Python 3 can use (the library is not a Python extension)."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel})
