"""The two library calls, forward and backward, on torch tensors: descriptors filled, outputs
allocated with torch (so CUDA memory comes from the caching allocator), errors raised.

This is the hot path of every call, so it makes no ctypes objects per call. Each thread owns one
preallocated buffer per entry point holding that call's descriptors (fa_tensor x N, then
fa_options), and the library gets the buffer's addresses as plain integers. A training loop
calls attention with the same shapes, strides and options over and over: the buffer remembers
what it describes (the "key"), and when the key matches only the data pointers are rewritten,
one 64-bit word each; otherwise everything is checked and packed with one struct.pack_into.
The buffers are per thread because ctypes releases the GIL during the call.
"""

from __future__ import annotations

import ctypes
import math
import struct
import threading

import torch

from . import _library as C

# One fa_tensor of rank 4 / rank 3: data, device_type, device_index, dtype, rank, shape[8],
# strides[8] (entries past the rank are ignored by the library; they are written as zeros).
_TENSOR4 = "Q4i4q32x4q32x"
_TENSOR3 = "Q4i3q40x3q40x"
# fa_options: struct_size, softmax_scale, causal, (padding), window_left, window_right, softcap,
# deterministic, then version 2's alibi_slopes (a pointer to an fa_tensor), dropout_p, (padding),
# dropout_seed, dropout_offset.
_OPTIONS = struct.Struct("<Ifi4xqqfiQf4xQQ")
# The ALiBi slopes' fa_tensor (float32, CPU, rank 1 or 2), after the options.
_SLOPES = struct.Struct("<Q4i8q8q")
_NO_DROPOUT = (0.0, 0, 0)

_TENSOR_SIZE = ctypes.sizeof(C.FaTensor)
_OPTIONS_SIZE = ctypes.sizeof(C.FaOptions)
_WORDS_PER_TENSOR = _TENSOR_SIZE // 8
assert struct.calcsize("<" + _TENSOR4) == _TENSOR_SIZE == struct.calcsize("<" + _TENSOR3)
assert _OPTIONS.size == _OPTIONS_SIZE and _TENSOR_SIZE % 8 == 0 and _SLOPES.size == _TENSOR_SIZE

_DTYPE_CODES = {
    torch.float32: C.FA_DTYPE_FLOAT32,
    torch.float16: C.FA_DTYPE_FLOAT16,
    torch.bfloat16: C.FA_DTYPE_BFLOAT16,
}
_LAYOUT = "(batch, seqlen, heads, head_dim)"

# Tests set this to fill every output with NaN before the library writes it, so an element the
# library leaves unwritten fails the comparison instead of passing on leftover memory.
poison_outputs = False

_library = None
_library_error: Exception | None = None
try:
    _library = C.load()
except C.LibraryNotFound as error:
    _library_error = error


def library() -> ctypes.CDLL:
    """The loaded library; raises LibraryNotFound (a RuntimeError) when it could not be loaded."""
    if _library is None:
        raise C.LibraryNotFound(str(_library_error))
    return _library


def _missing_library(*arguments) -> int:
    library()  # raises
    return C.FA_ERROR_INTERNAL


# The entry points, bound once (an attribute lookup on the CDLL per call costs as much as
# rewriting the descriptors).
_call_forward = _library.fa_forward if _library is not None else _missing_library
_call_backward = _library.fa_backward if _library is not None else _missing_library


class _Descriptors:
    """One entry point's descriptors for one thread: fa_tensor x count, then fa_options."""

    def __init__(self, layout: str) -> None:
        self.tensors = struct.Struct("<" + layout)
        self.count = self.tensors.size // _TENSOR_SIZE
        self.buffer = ctypes.create_string_buffer(self.tensors.size + _OPTIONS_SIZE + _TENSOR_SIZE)
        self.words = (ctypes.c_uint64 * (self.tensors.size // 8)).from_buffer(self.buffer)
        base = ctypes.addressof(self.buffer)
        self.addresses = tuple(base + i * _TENSOR_SIZE for i in range(self.count + 1))
        self.slopes_offset = self.tensors.size + _OPTIONS_SIZE
        self.slopes_address = base + self.slopes_offset
        self.key = None  # what the tensor descriptors hold (shapes, strides, dtypes, device)
        self.derived = None  # what the key implies: output shapes, inputs to copy
        self.options = None  # what fa_options holds

    def set_options(self, options: tuple, slopes: torch.Tensor | None = None, dropout: tuple = _NO_DROPOUT) -> None:
        """options: (softmax_scale, causal, window_left, window_right, softcap, deterministic);
        slopes: a contiguous float32 CPU tensor, described afresh each call (its address changes);
        dropout: (p, seed, offset)."""
        alibi = 0
        if slopes is not None:
            shape = tuple(slopes.shape) + (0,) * (8 - slopes.dim())
            strides = tuple(slopes.stride()) + (0,) * (8 - slopes.dim())
            _SLOPES.pack_into(
                self.buffer, self.slopes_offset, slopes.data_ptr(), C.FA_DEVICE_CPU, 0, C.FA_DTYPE_FLOAT32,
                slopes.dim(), *shape, *strides,
            )
            alibi = self.slopes_address
        full = (*options, alibi, *dropout)
        if full == self.options:
            return
        self.options = None
        try:
            _OPTIONS.pack_into(self.buffer, self.tensors.size, _OPTIONS_SIZE, *full)
        except (struct.error, OverflowError) as error:
            scale, _, left, right, softcap, _ = options
            raise ValueError(
                f"flash_attention_swift: an option is out of range ({error}): softmax_scale={scale}, "
                f"window_size=({left}, {right}), softcap={softcap}, dropout={dropout}"
            ) from None
        self.options = full


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.forward = _Descriptors(_TENSOR4 * 4 + _TENSOR3)  # q, k, v, out, lse
        self.backward = _Descriptors(_TENSOR4 * 4 + _TENSOR3 + _TENSOR4 * 4)  # q, k, v, out, lse, dout, dq, dk, dv


_buffers = _Buffers()


def _raise_status(status: int) -> None:
    message = library().fa_last_error_message().decode("utf-8", "replace")
    raise C.error_type(status)(f"flash_attention_swift: {message or C.STATUS_NAMES.get(status, status)}")


def _dtype_code(tensor: torch.Tensor, name: str) -> int:
    code = _DTYPE_CODES.get(tensor.dtype)
    if code is None:
        raise TypeError(
            f"flash_attention_swift: {name} has dtype {tensor.dtype}; "
            "supported: torch.float16, torch.bfloat16, and torch.float32 on the CPU"
        )
    return code


def _check_rank(tensor: torch.Tensor, name: str, rank: int = 4, layout: str = _LAYOUT) -> None:
    if tensor.dim() != rank:
        raise ValueError(
            f"flash_attention_swift: {name} must have {rank} dimensions {layout}, got shape {tuple(tensor.shape)}"
        )


def _location(q: torch.Tensor) -> tuple[int, bool]:
    """q's device index (-1 for the CPU) and whether it is a CUDA tensor; other devices raise."""
    if q.is_cuda:
        return q.get_device(), True
    if not q.is_cpu:
        raise TypeError(f"flash_attention_swift: tensors on {q.device} are not supported (cpu or cuda)")
    return -1, False


def _check_device(tensor: torch.Tensor, name: str, device: int, is_cuda: bool) -> None:
    """Every tensor on q's device: a foreign pointer would be read as the wrong kind of memory."""
    if tensor.get_device() != device or tensor.is_cuda != is_cuda or not (is_cuda or tensor.is_cpu):
        raise ValueError(f"flash_attention_swift: {name} is on {tensor.device}, expected the device of q")


def _needs_copy(tensor: torch.Tensor) -> bool:
    """Whether the library cannot read the tensor in place: a last stride other than 1 (any
    other strides are passed as they are). A last axis of size 0 or 1 has a free stride."""
    return tensor.stride(-1) != 1 and tensor.size(-1) > 1


# The driver's handle of the legacy default stream. torch's default stream is that stream, whose
# handle torch reports as 0; but NULL means "the library's own stream" to fa_forward (a
# non-blocking stream that would not wait for torch's queued work), so 0 goes in as this.
CU_STREAM_LEGACY = 0x1


def _current_stream_getter():
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is None:

        def raw(index: int) -> int:
            return torch.cuda.current_stream(index).cuda_stream

    def current(index: int) -> int:
        return raw(index) or CU_STREAM_LEGACY

    return current


_current_stream = _current_stream_getter()
_FLOAT32 = torch.float32


def _check_inputs(tensors, names, ranks, device: int, is_cuda: bool) -> None:
    for tensor, name, rank in zip(tensors, names, ranks):
        _check_rank(tensor, name, rank, _LAYOUT if rank == 4 else "(batch, heads, seqlen)")
        _check_device(tensor, name, device, is_cuda)
        _dtype_code(tensor, name)


def _pack_descriptors(descriptors: _Descriptors, tensors, device: int, is_cuda: bool) -> None:
    """Every fa_tensor of the call, data pointers left 0 (written per call). Outputs are given as
    meta stand-ins of their shapes: only their data pointers change from call to call."""
    device_type = C.FA_DEVICE_CUDA if is_cuda else C.FA_DEVICE_CPU
    device_index = device if is_cuda else 0
    fields = []
    for tensor in tensors:
        strides = tensor.stride()
        if strides[-1] != 1:  # a last axis of size 0 or 1, whose stride torch leaves free
            strides = (*strides[:-1], 1)
        fields += (0, device_type, device_index, _DTYPE_CODES[tensor.dtype], tensor.dim(), *tensor.shape, *strides)
    descriptors.tensors.pack_into(descriptors.buffer, 0, *fields)


def _copies(tensors) -> tuple | None:
    """Which inputs need a contiguous copy, or None when none does (the usual case)."""
    copies = tuple(_needs_copy(t) for t in tensors)
    return copies if any(copies) else None


def _copied(tensors, copies):
    return tuple(t.contiguous() if copy else t for t, copy in zip(tensors, copies))


def _standin(shape, dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    softmax_scale: float | None,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    alibi_slopes: torch.Tensor | None = None,
    dropout: tuple = _NO_DROPOUT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """out [b, sq, hq, dv] (q's dtype) and lse float32 [b, hq, sq], new tensors on q's device.
    softmax_scale None means 1/sqrt(head_dim). alibi_slopes: a contiguous float32 CPU tensor
    (_features.host_slopes); dropout: (p, seed, offset) (_features.dropout_state)."""
    if q.is_cuda:
        device, is_cuda = q.get_device(), True
    else:
        device, is_cuda = _location(q)
    q_shape, v_shape = q.shape, v.shape
    key = (
        q_shape, k.shape, v_shape, q.stride(), k.stride(), v.stride(), q.dtype, k.dtype, v.dtype,
        device, is_cuda, k.get_device(), k.is_cuda, v.get_device(), v.is_cuda,
    )
    descriptors = _buffers.forward
    if key != descriptors.key:
        descriptors.key = None
        _check_inputs((q, k, v), ("q", "k", "v"), (4, 4, 4), device, is_cuda)
        batch, seqlen_q, heads_q, _ = q_shape
        out_shape = (batch, seqlen_q, heads_q, v_shape[3])
        lse_shape = (batch, heads_q, seqlen_q)
        copies = _copies((q, k, v))
        readable = _copied((q, k, v), copies) if copies else (q, k, v)
        outputs = (_standin(out_shape, q.dtype), _standin(lse_shape, _FLOAT32))
        _pack_descriptors(descriptors, (*readable, *outputs), device, is_cuda)
        descriptors.derived = (out_shape, lse_shape, copies)
        descriptors.key = key
    out_shape, lse_shape, copies = descriptors.derived
    if copies is not None:
        q, k, v = _copied((q, k, v), copies)
    out = q.new_empty(out_shape)
    lse = q.new_empty(lse_shape, dtype=_FLOAT32)
    if poison_outputs:
        out.fill_(math.nan)
        lse.fill_(math.nan)
    words = descriptors.words
    words[0] = q.data_ptr()
    words[_WORDS_PER_TENSOR] = k.data_ptr()
    words[2 * _WORDS_PER_TENSOR] = v.data_ptr()
    words[3 * _WORDS_PER_TENSOR] = out.data_ptr()
    words[4 * _WORDS_PER_TENSOR] = lse.data_ptr()
    if softmax_scale is None:
        head_dim = q_shape[3]
        softmax_scale = head_dim ** -0.5 if head_dim > 0 else 1.0
    descriptors.set_options((softmax_scale, causal, window_left, window_right, softcap, False), alibi_slopes, dropout)
    status = _call_forward(*descriptors.addresses, _current_stream(device) if is_cuda else None)
    if status:
        _raise_status(status)
    return out, lse


def backward(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    softmax_scale: float | None,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
    alibi_slopes: torch.Tensor | None = None,
    dropout: tuple = _NO_DROPOUT,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv (contiguous, the inputs' shapes and dtype) of sum(out * dout); alibi_slopes and
    dropout (the forward's seed and offset) as in forward."""
    device, is_cuda = _location(q)
    inputs = (q, k, v, out, lse, dout)
    key = tuple((t.shape, t.stride(), t.dtype, t.get_device(), t.is_cuda) for t in inputs)
    descriptors = _buffers.backward
    if key != descriptors.key:
        descriptors.key = None
        _check_inputs(inputs, ("q", "k", "v", "out", "lse", "dout"), (4, 4, 4, 4, 3, 4), device, is_cuda)
        if lse.dtype != _FLOAT32:
            raise TypeError(f"flash_attention_swift: lse must be torch.float32, got {lse.dtype}")
        copies = _copies(inputs)
        readable = _copied(inputs, copies) if copies else inputs
        gradients = (_standin(t.shape, t.dtype) for t in (q, k, v))
        _pack_descriptors(descriptors, (*readable, *gradients), device, is_cuda)
        descriptors.derived = copies
        descriptors.key = key
    copies = descriptors.derived
    if copies is not None:
        inputs = _copied(inputs, copies)
    q, k, v = inputs[:3]
    dq = q.new_empty(q.shape)
    dk = k.new_empty(k.shape)
    dv = v.new_empty(v.shape)
    if poison_outputs:
        for gradient in (dq, dk, dv):
            gradient.fill_(math.nan)
    words = descriptors.words
    for index, tensor in enumerate((*inputs, dq, dk, dv)):
        words[index * _WORDS_PER_TENSOR] = tensor.data_ptr()
    if softmax_scale is None:
        head_dim = q.shape[3]
        softmax_scale = head_dim ** -0.5 if head_dim > 0 else 1.0
    descriptors.set_options(
        (softmax_scale, causal, window_left, window_right, softcap, deterministic), alibi_slopes, dropout
    )
    status = _call_backward(*descriptors.addresses, _current_stream(device) if is_cuda else None)
    if status:
        _raise_status(status)
    return dq, dk, dv


def backend_status(device: torch.device | str) -> tuple[bool, str]:
    """Whether the library can run on `device` here, and the library's reason when not."""
    device = torch.device(device)
    if device.type == "cpu":
        device_type, index = C.FA_DEVICE_CPU, 0
    elif device.type == "cuda":
        device_type, index = C.FA_DEVICE_CUDA, device.index if device.index is not None else 0
    else:
        return False, f"{device.type} tensors are not supported (cpu or cuda)"
    lib = library()
    status = lib.fa_backend_status(device_type, index)
    if status == C.FA_SUCCESS:
        return True, ""
    return False, lib.fa_last_error_message().decode("utf-8", "replace")
