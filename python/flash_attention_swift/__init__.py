"""FlashAttention for Swift, from PyTorch: exact attention with FlashAttention-3's interface.

    from flash_attention_swift import flash_attn_func
    out = flash_attn_func(q, k, v, causal=True)   # q, k, v: (batch, seqlen, heads, head_dim)

The library (libflashattention.so, next to this file or at $FLASH_ATTENTION_LIBRARY) is called
through its C interface with ctypes: no torch C++ extension, so one wheel serves torch >= 2.4.
"""

from ._calls import backend_status, library
from ._library import LIBRARY_ENV, LibraryNotFound, library_path
from .interface import (
    flash_attn_combine,
    flash_attn_func,
    flash_attn_kvpacked_func,
    flash_attn_qkvpacked_func,
    flash_attn_varlen_func,
    flash_attn_with_kvcache,
)

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded libflashattention.so's version, "MAJOR.MINOR.PATCH"."""
    return library().fa_version().decode()


__all__ = [
    "LIBRARY_ENV",
    "LibraryNotFound",
    "backend_status",
    "flash_attn_combine",
    "flash_attn_func",
    "flash_attn_kvpacked_func",
    "flash_attn_qkvpacked_func",
    "flash_attn_varlen_func",
    "flash_attn_with_kvcache",
    "library_path",
    "library_version",
]
