"""Loads libflashattention.so and describes its C interface (flash_attention.h) to ctypes.

The package talks to the library through its C ABI only, so one wheel serves every PyTorch
version (no torch C++ extension, no ABI coupling). ctypes.CDLL releases the GIL during each call.
"""

from __future__ import annotations

import ctypes
import os

LIBRARY_ENV = "FLASH_ATTENTION_LIBRARY"
LIBRARY_NAME = "libflashattention.so"

# The header this module mirrors (flash_attention.h): the library's major version must match.
HEADER_VERSION_MAJOR = 0

FA_MAX_RANK = 8

FA_SUCCESS = 0
FA_ERROR_INVALID_ARGUMENT = 1
FA_ERROR_UNSUPPORTED = 2
FA_ERROR_BACKEND_UNAVAILABLE = 3
FA_ERROR_OUT_OF_MEMORY = 4
FA_ERROR_CUDA = 5
FA_ERROR_COMPILATION = 6
FA_ERROR_INTERNAL = 7

FA_DTYPE_FLOAT32 = 0
FA_DTYPE_FLOAT16 = 1
FA_DTYPE_BFLOAT16 = 2
FA_DTYPE_INT32 = 3  # index tensors only (cu_seqlens, seqused, cache_seqlens, cache_batch_idx, page_table)

FA_DEVICE_CPU = 0
FA_DEVICE_CUDA = 1


class FaTensor(ctypes.Structure):
    """struct fa_tensor: a view of caller-owned memory, strides in elements."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_index", ctypes.c_int32),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * FA_MAX_RANK),
        ("strides", ctypes.c_int64 * FA_MAX_RANK),
    ]


class FaOptions(ctypes.Structure):
    """struct fa_options (version 2: ALiBi and dropout); struct_size is sizeof of this layout."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("softmax_scale", ctypes.c_float),
        ("causal", ctypes.c_int32),
        ("window_left", ctypes.c_int64),
        ("window_right", ctypes.c_int64),
        ("softcap", ctypes.c_float),
        ("deterministic", ctypes.c_int32),
        ("alibi_slopes", ctypes.c_void_p),
        ("dropout_p", ctypes.c_float),
        ("dropout_seed", ctypes.c_uint64),
        ("dropout_offset", ctypes.c_uint64),
    ]


class FaOptionsV3(FaOptions):
    """struct fa_options version 3: version 2, then the fp8 descale pointers (fa_forward only).
    The whole current struct, so it is what fa_options_default returns: a smaller restype would
    let the library write past ctypes' return buffer."""

    _fields_ = [
        ("q_descale", ctypes.c_void_p),
        ("k_descale", ctypes.c_void_p),
        ("v_descale", ctypes.c_void_p),
    ]


class LibraryNotFound(RuntimeError):
    """libflashattention.so could not be loaded (missing file, wrong version, foreign platform)."""


def library_path() -> str:
    """Where the library is loaded from: $FLASH_ATTENTION_LIBRARY, else next to this package."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return override
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    pointer = ctypes.c_void_p
    lib.fa_forward.argtypes = [pointer] * 7
    lib.fa_forward.restype = ctypes.c_int
    lib.fa_backward.argtypes = [pointer] * 11
    lib.fa_backward.restype = ctypes.c_int
    lib.fa_backend_status.argtypes = [ctypes.c_int32, ctypes.c_int32]
    lib.fa_backend_status.restype = ctypes.c_int
    lib.fa_last_error_message.argtypes = []
    lib.fa_last_error_message.restype = ctypes.c_char_p
    lib.fa_version.argtypes = []
    lib.fa_version.restype = ctypes.c_char_p
    lib.fa_version_number.argtypes = []
    lib.fa_version_number.restype = ctypes.c_int32
    lib.fa_options_default.argtypes = []
    lib.fa_options_default.restype = FaOptionsV3
    # Variable-length and KV-cache entry points (header 0.1). A library without them still serves
    # fa_forward/fa_backward; the calls that need them raise (see _varlen_calls).
    int64, int32 = ctypes.c_int64, ctypes.c_int32
    signatures = {
        "fa_varlen_forward": [pointer] * 9 + [int64, int64] + [pointer] * 2,
        "fa_varlen_backward": [pointer] * 13 + [int64, int64] + [pointer] * 2,
        "fa_kvcache_forward": [pointer] * 10 + [int32] + [pointer] * 2,
    }
    for name, argtypes in signatures.items():
        if hasattr(lib, name):
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = ctypes.c_int
    return lib


NVRTC_ENV = "FLASH_ATTENTION_NVRTC"
# Where NVIDIA's PyPI wheels put NVRTC: nvidia-cuda-nvrtc (CUDA 13) and nvidia-cuda-nvrtc-cu12.
_NVRTC_WHEEL_FILES = (
    ("nvidia", "cu13", "lib", "libnvrtc.so.13"),
    ("nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12"),
)


def _nvrtc_already_loaded() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libnvrtc.so" in line for line in maps)
    except OSError:
        return False


def point_at_nvrtc_wheel() -> None:
    """Sets FLASH_ATTENTION_NVRTC to an NVRTC wheel on sys.path, unless it is set or a libnvrtc
    is already in the process (PyTorch's CUDA builds load one; the library then finds it by its
    soname). The library's own search looks at the usual site-packages folders but cannot see
    this interpreter's sys.path (an unactivated virtual environment, --target installs)."""
    if os.environ.get(NVRTC_ENV) or _nvrtc_already_loaded():
        return
    import sys

    for entry in sys.path:
        for parts in _NVRTC_WHEEL_FILES:
            candidate = os.path.join(entry or ".", *parts)
            if os.path.isfile(candidate):
                os.environ[NVRTC_ENV] = os.path.abspath(candidate)
                return


def load() -> ctypes.CDLL:
    """Opens the library and checks that it speaks this module's version of the header."""
    point_at_nvrtc_wheel()
    path = library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as error:
        hint = (
            f"set {LIBRARY_ENV} to a libflashattention.so"
            if LIBRARY_ENV not in os.environ
            else f"{LIBRARY_ENV} points to it"
        )
        raise LibraryNotFound(f"flash_attention_swift: cannot load {path} ({error}); {hint}") from error
    lib = _bind(lib)
    major = lib.fa_version_number() // 10000
    if major != HEADER_VERSION_MAJOR:
        raise LibraryNotFound(
            f"flash_attention_swift: {path} is version {lib.fa_version().decode()}, "
            f"this package needs {HEADER_VERSION_MAJOR}.x"
        )
    library_options = lib.fa_options_default()
    if library_options.struct_size < ctypes.sizeof(FaOptions):
        raise LibraryNotFound(
            f"flash_attention_swift: {path} has a smaller fa_options ({library_options.struct_size} bytes) "
            f"than this package ({ctypes.sizeof(FaOptions)})"
        )
    return lib


_ERROR_TYPES = {
    FA_ERROR_INVALID_ARGUMENT: ValueError,
    FA_ERROR_UNSUPPORTED: NotImplementedError,
}


def error_type(status: int) -> type[Exception]:
    """The Python exception for an fa_status: invalid argument -> ValueError, unsupported ->
    NotImplementedError, everything else (no backend, memory, CUDA, compiler) -> RuntimeError."""
    return _ERROR_TYPES.get(status, RuntimeError)


STATUS_NAMES = {
    FA_ERROR_INVALID_ARGUMENT: "invalid argument",
    FA_ERROR_UNSUPPORTED: "unsupported",
    FA_ERROR_BACKEND_UNAVAILABLE: "backend unavailable",
    FA_ERROR_OUT_OF_MEMORY: "out of memory",
    FA_ERROR_CUDA: "CUDA error",
    FA_ERROR_COMPILATION: "kernel compilation failed",
    FA_ERROR_INTERNAL: "internal error",
}
