"""The variable-length and KV-cache library calls on torch tensors: fa_varlen_forward,
fa_varlen_backward and fa_kvcache_forward (flash_attention.h).

They work like the fixed-length calls in _calls (whose per-thread descriptor buffers, checks and
copies they reuse): descriptors filled once per distinct set of shapes and strides, data
pointers rewritten per call, outputs allocated with torch, the library's message raised. Every
descriptor uses one generic layout (shape and strides padded to FA_MAX_RANK), so tensors of any
rank fit; an optional tensor that is absent goes to the library as NULL.

Index tensors (cu_seqlens, seqused, cache_seqlens, cache_batch_idx, page_table) must be
torch.int32 on q's device, as FlashAttention requires; the library reads them with their strides
(never copied). On the CPU it checks their values (a bad one raises ValueError); CUDA index data
is trusted, as FlashAttention trusts it.
"""

from __future__ import annotations

import math
import struct
import threading

import torch

from . import _calls
from . import _library as C

# One fa_tensor of any rank: data, device_type, device_index, dtype, rank, shape[8], strides[8].
_SLOT = "Q4i8q8q"
_ABSENT = (0,) * 21
assert struct.calcsize("<" + _SLOT) == _calls._TENSOR_SIZE

_INT32 = torch.int32
_FLOAT32 = torch.float32
_INT64_MAX = 2**63 - 1
_PACKED = "(total_tokens, heads, head_dim)"
_BATCHED = "(batch, seqlen, heads, head_dim)"
_CACHE = "(batch_cache, seqlen_cache, heads_kv, head_dim), or (num_pages, page_size, heads_kv, head_dim) with a page_table"


def _entry_point(name: str):
    """The library's function, or a stand-in that raises when the library (or this entry point,
    in a library older than header 0.1) is missing."""
    library = _calls._library
    if library is None:
        return _calls._missing_library
    function = getattr(library, name, None)
    if function is not None:
        return function

    def missing(*arguments) -> int:
        raise C.LibraryNotFound(
            f"flash_attention_swift: {C.library_path()} has no {name}: it predates variable-length and "
            "KV-cache attention (header 0.1); install a matching library"
        )

    return missing


_call_varlen_forward = _entry_point("fa_varlen_forward")
_call_varlen_backward = _entry_point("fa_varlen_backward")
_call_kvcache_forward = _entry_point("fa_kvcache_forward")


class _Buffers(threading.local):
    def __init__(self) -> None:
        # q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k
        self.varlen_forward = _calls._Descriptors(_SLOT * 9)
        # q, k, v, out, lse, dout, dq, dk, dv, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k
        self.varlen_backward = _calls._Descriptors(_SLOT * 13)
        # q, k_cache, v_cache, k_new, v_new, cache_seqlens, cache_batch_idx, page_table, out, lse
        self.kvcache_forward = _calls._Descriptors(_SLOT * 10)


_buffers = _Buffers()


def _signature(tensor):
    """What a descriptor records of a tensor (None for an absent one)."""
    if tensor is None:
        return None
    return (tensor.shape, tensor.stride(), tensor.dtype, tensor.get_device(), tensor.is_cuda)


def _check_floats(tensors, names, rank: int, layout: str, device: int, is_cuda: bool) -> None:
    for tensor, name in zip(tensors, names):
        if tensor is None:
            continue
        _calls._check_rank(tensor, name, rank, layout)
        _calls._check_device(tensor, name, device, is_cuda)
        _calls._dtype_code(tensor, name)


def check_index(tensor, name: str, rank: int, layout: str) -> None:
    """An index tensor's type, dtype and rank (device and values are checked later)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"flash_attention_swift: {name} must be a torch.int32 tensor {layout}, got {type(tensor).__name__}")
    if tensor.dtype != _INT32:
        raise TypeError(f"flash_attention_swift: {name} must be torch.int32 {layout}, got {tensor.dtype}")
    if tensor.dim() != rank:
        raise ValueError(f"flash_attention_swift: {name} must have {rank} dimension{'s' if rank > 1 else ''} {layout}, got shape {tuple(tensor.shape)}")


def _check_indexes(indexes, device: int, is_cuda: bool) -> None:
    """(tensor, name, rank, layout) for each index tensor; absent ones (None) are skipped."""
    for tensor, name, rank, layout in indexes:
        if tensor is None:
            continue
        check_index(tensor, name, rank, layout)
        _calls._check_device(tensor, name, device, is_cuda)


def _pack(descriptors, tensors, device: int, is_cuda: bool) -> None:
    """Every slot's fa_tensor, data pointers left 0 (written per call); zeros for absent ones."""
    device_type = C.FA_DEVICE_CUDA if is_cuda else C.FA_DEVICE_CPU
    device_index = device if is_cuda else 0
    fields = []
    for tensor in tensors:
        if tensor is None:
            fields += _ABSENT
            continue
        rank = tensor.dim()
        padding = (0,) * (C.FA_MAX_RANK - rank)
        strides = tensor.stride()
        if tensor.dtype == _INT32:
            code = C.FA_DTYPE_INT32
        else:
            code = _calls._DTYPE_CODES[tensor.dtype]
            if strides[-1] != 1:  # a last axis of size 0 or 1, whose stride torch leaves free
                strides = (*strides[:-1], 1)
        fields += (0, device_type, device_index, code, rank, *tensor.shape, *padding, *strides, *padding)
    descriptors.tensors.pack_into(descriptors.buffer, 0, *fields)


def _addresses(descriptors, tensors) -> list:
    """The descriptors' addresses with each tensor's data pointer written; None (NULL) for an
    absent tensor."""
    words = descriptors.words
    addresses = list(descriptors.addresses[:-1])
    for slot, tensor in enumerate(tensors):
        if tensor is None:
            addresses[slot] = None
        else:
            words[slot * _calls._WORDS_PER_TENSOR] = tensor.data_ptr()
    return addresses


def _length(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"flash_attention_swift: {name} must be an int, got {type(value).__name__}")
    if not -_INT64_MAX <= value <= _INT64_MAX:
        raise ValueError(f"flash_attention_swift: {name} = {value} is out of range")
    return value


def _scale(softmax_scale, head_dim: int) -> float:
    if softmax_scale is None:
        return head_dim ** -0.5 if head_dim > 0 else 1.0
    return softmax_scale


def _poison(*tensors) -> None:
    if _calls.poison_outputs:
        for tensor in tensors:
            tensor.fill_(math.nan)


def _stream(device: int, is_cuda: bool):
    return _calls._current_stream(device) if is_cuda else None


def _varlen_indexes(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k):
    return (
        (cu_seqlens_q, "cu_seqlens_q", 1, "(batch + 1,)"),
        (cu_seqlens_k, "cu_seqlens_k", 1, "(batch + 1,)"),
        (seqused_q, "seqused_q", 1, "(batch,)"),
        (seqused_k, "seqused_k", 1, "(batch,)"),
    )


def varlen_forward(
    q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q: int, max_seqlen_k: int,
    softmax_scale: float | None, causal: bool, window_left: int, window_right: int, softcap: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """out (total_q, heads_q, head_dim_v) in q's dtype and lse float32 (heads_q, total_q)."""
    device, is_cuda = _calls._location(q)
    indexes = (cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    key = (*map(_signature, (q, k, v, *indexes)), device, is_cuda)
    descriptors = _buffers.varlen_forward
    if key != descriptors.key:
        descriptors.key = None
        _check_floats((q, k, v), ("q", "k", "v"), 3, _PACKED, device, is_cuda)
        _check_indexes(_varlen_indexes(*indexes), device, is_cuda)
        total_q, heads_q, _ = q.shape
        out_shape = (total_q, heads_q, v.shape[2])
        lse_shape = (heads_q, total_q)
        copies = _calls._copies((q, k, v))
        readable = _calls._copied((q, k, v), copies) if copies else (q, k, v)
        outputs = (_calls._standin(out_shape, q.dtype), _calls._standin(lse_shape, _FLOAT32))
        _pack(descriptors, (*readable, *outputs, *indexes), device, is_cuda)
        descriptors.derived = (out_shape, lse_shape, copies)
        descriptors.key = key
    out_shape, lse_shape, copies = descriptors.derived
    if copies is not None:
        q, k, v = _calls._copied((q, k, v), copies)
    max_seqlen_q = _length(max_seqlen_q, "max_seqlen_q")
    max_seqlen_k = _length(max_seqlen_k, "max_seqlen_k")
    out = q.new_empty(out_shape)
    lse = q.new_empty(lse_shape, dtype=_FLOAT32)
    _poison(out, lse)
    addresses = _addresses(descriptors, (q, k, v, out, lse, *indexes))
    descriptors.set_options((_scale(softmax_scale, q.shape[2]), causal, window_left, window_right, softcap, False))
    status = _call_varlen_forward(
        *addresses, max_seqlen_q, max_seqlen_k, descriptors.addresses[-1], _stream(device, is_cuda)
    )
    if status:
        _calls._raise_status(status)
    return out, lse


def varlen_backward(
    dout, q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q: int,
    max_seqlen_k: int, softmax_scale: float | None, causal: bool, window_left: int, window_right: int,
    softcap: float, deterministic: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv (contiguous, shaped like q, k, v) of sum(out * dout) for a packed batch."""
    device, is_cuda = _calls._location(q)
    inputs = (q, k, v, out, lse, dout)
    indexes = (cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    key = (*map(_signature, (*inputs, *indexes)), device, is_cuda)
    descriptors = _buffers.varlen_backward
    if key != descriptors.key:
        descriptors.key = None
        _check_floats((q, k, v, out, dout), ("q", "k", "v", "out", "dout"), 3, _PACKED, device, is_cuda)
        _calls._check_rank(lse, "lse", 2, "(heads, total_q)")
        _calls._check_device(lse, "lse", device, is_cuda)
        if lse.dtype != _FLOAT32:
            raise TypeError(f"flash_attention_swift: lse must be torch.float32, got {lse.dtype}")
        _check_indexes(_varlen_indexes(*indexes), device, is_cuda)
        copies = _calls._copies(inputs)
        readable = _calls._copied(inputs, copies) if copies else inputs
        gradients = tuple(_calls._standin(t.shape, t.dtype) for t in (q, k, v))
        _pack(descriptors, (*readable, *gradients, *indexes), device, is_cuda)
        descriptors.derived = copies
        descriptors.key = key
    copies = descriptors.derived
    if copies is not None:
        inputs = _calls._copied(inputs, copies)
    q, k, v = inputs[:3]
    max_seqlen_q = _length(max_seqlen_q, "max_seqlen_q")
    max_seqlen_k = _length(max_seqlen_k, "max_seqlen_k")
    dq, dk, dv = q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)
    _poison(dq, dk, dv)
    addresses = _addresses(descriptors, (*inputs, dq, dk, dv, *indexes))
    descriptors.set_options(
        (_scale(softmax_scale, q.shape[2]), causal, window_left, window_right, softcap, deterministic)
    )
    status = _call_varlen_backward(
        *addresses, max_seqlen_q, max_seqlen_k, descriptors.addresses[-1], _stream(device, is_cuda)
    )
    if status:
        _calls._raise_status(status)
    return dq, dk, dv


def _check_cache(tensor, name: str) -> None:
    """The cache is written in place and may be large: it is never copied, so its last stride
    must be 1 (FlashAttention asserts the same)."""
    if _calls._needs_copy(tensor):
        raise ValueError(
            f"flash_attention_swift: {name} must have a unit last stride (it is read and written in place), "
            f"got strides {tensor.stride()}"
        )


def kvcache_forward(
    q, k_cache, v_cache, k_new, v_new, cache_seqlens, cache_batch_idx, page_table,
    softmax_scale: float | None, causal: bool, window_left: int, window_right: int, softcap: float,
    num_splits: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """out (batch, seqlen_q, heads_q, head_dim_v) and lse float32 (batch, heads_q, seqlen_q) of q
    against the cache, after k_new/v_new are written into it (in place) at cache_seqlens."""
    device, is_cuda = _calls._location(q)
    floats = (q, k_cache, v_cache, k_new, v_new)
    indexes = (cache_seqlens, cache_batch_idx, page_table)
    key = (*map(_signature, (*floats, *indexes)), device, is_cuda)
    descriptors = _buffers.kvcache_forward
    if key != descriptors.key:
        descriptors.key = None
        _check_floats((q, k_new, v_new), ("q", "k", "v"), 4, _BATCHED, device, is_cuda)
        _check_floats((k_cache, v_cache), ("k_cache", "v_cache"), 4, _CACHE, device, is_cuda)
        _check_cache(k_cache, "k_cache")
        _check_cache(v_cache, "v_cache")
        _check_indexes(
            (
                (cache_seqlens, "cache_seqlens", 1, "(batch,)"),
                (cache_batch_idx, "cache_batch_idx", 1, "(batch,)"),
                (page_table, "page_table", 2, "(batch, max_pages_per_sequence)"),
            ),
            device,
            is_cuda,
        )
        batch, seqlen_q, heads_q, _ = q.shape
        out_shape = (batch, seqlen_q, heads_q, v_cache.shape[3])
        lse_shape = (batch, heads_q, seqlen_q)
        new = (q, k_new, v_new)
        copies = tuple(t is not None and _calls._needs_copy(t) for t in new)
        copies = copies if any(copies) else None
        readable = _calls._copied(new, copies) if copies else new
        outputs = (_calls._standin(out_shape, q.dtype), _calls._standin(lse_shape, _FLOAT32))
        _pack(
            descriptors, (readable[0], k_cache, v_cache, *readable[1:], *indexes, *outputs), device, is_cuda
        )
        descriptors.derived = (out_shape, lse_shape, copies)
        descriptors.key = key
    out_shape, lse_shape, copies = descriptors.derived
    if copies is not None:
        q, k_new, v_new = _calls._copied((q, k_new, v_new), copies)
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or not 0 <= num_splits < 2**31:
        raise ValueError(f"flash_attention_swift: num_splits must be an int in 0 ..< 2^31 (0 chooses), got {num_splits!r}")
    out = q.new_empty(out_shape)
    lse = q.new_empty(lse_shape, dtype=_FLOAT32)
    _poison(out, lse)
    addresses = _addresses(descriptors, (q, k_cache, v_cache, k_new, v_new, *indexes, out, lse))
    descriptors.set_options((_scale(softmax_scale, q.shape[3]), causal, window_left, window_right, softcap, False))
    status = _call_kvcache_forward(
        *addresses, num_splits, descriptors.addresses[-1], _stream(device, is_cuda)
    )
    if status:
        _calls._raise_status(status)
    return out, lse
