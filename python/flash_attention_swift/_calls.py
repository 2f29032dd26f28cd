"""The two library calls, forward and backward, on torch tensors: descriptors packed, outputs
allocated with torch (so CUDA memory comes from the caching allocator), errors raised.

This is the hot path of every call, so it avoids per-call ctypes objects: each thread owns one
preallocated buffer holding the descriptors of a call (fa_tensor x N, then fa_options), filled by
a single struct.pack_into, and the functions take the buffer's addresses as plain integers.
The buffer is per thread because ctypes releases the GIL during the call.
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
# deterministic.
_OPTIONS = "Ifi4xqqfi"

_FORWARD_LAYOUT = struct.Struct("<" + _TENSOR4 * 4 + _TENSOR3 + _OPTIONS)
_BACKWARD_LAYOUT = struct.Struct("<" + _TENSOR4 * 4 + _TENSOR3 + _TENSOR4 * 4 + _OPTIONS)
_TENSOR_SIZE = ctypes.sizeof(C.FaTensor)
_OPTIONS_SIZE = ctypes.sizeof(C.FaOptions)
assert struct.calcsize("<" + _TENSOR4) == _TENSOR_SIZE == struct.calcsize("<" + _TENSOR3)
assert struct.calcsize("<" + _OPTIONS) == _OPTIONS_SIZE

_DTYPE_CODES = {
    torch.float32: C.FA_DTYPE_FLOAT32,
    torch.float16: C.FA_DTYPE_FLOAT16,
    torch.bfloat16: C.FA_DTYPE_BFLOAT16,
}

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


# The entry points, bound once (an attribute lookup on the CDLL per call costs as much as the
# rest of the packing).
_call_forward = _library.fa_forward if _library is not None else _missing_library
_call_backward = _library.fa_backward if _library is not None else _missing_library


class _Buffers(threading.local):
    """This thread's descriptor buffers and their addresses."""

    def __init__(self) -> None:
        self.forward = ctypes.create_string_buffer(_FORWARD_LAYOUT.size)
        self.backward = ctypes.create_string_buffer(_BACKWARD_LAYOUT.size)
        base = ctypes.addressof(self.forward)
        self.forward_args = tuple(base + i * _TENSOR_SIZE for i in range(6))
        base = ctypes.addressof(self.backward)
        self.backward_args = tuple(base + i * _TENSOR_SIZE for i in range(10))


_buffers = _Buffers()


def _raise_status(status: int) -> None:
    lib = library()
    message = lib.fa_last_error_message().decode("utf-8", "replace")
    raise C.error_type(status)(f"flash_attention_swift: {message or C.STATUS_NAMES.get(status, status)}")


def _dtype_code(tensor: torch.Tensor, name: str) -> int:
    code = _DTYPE_CODES.get(tensor.dtype)
    if code is None:
        raise TypeError(
            f"flash_attention_swift: {name} has dtype {tensor.dtype}; "
            "supported: torch.float16, torch.bfloat16, and torch.float32 on the CPU"
        )
    return code


def _lse_dtype_code(lse: torch.Tensor) -> int:
    if lse.dtype != torch.float32:
        raise TypeError(f"flash_attention_swift: lse must be torch.float32, got {lse.dtype}")
    return C.FA_DTYPE_FLOAT32


def _rank_error(tensor: torch.Tensor, name: str, layout: str = "(batch, seqlen, heads, head_dim)") -> ValueError:
    return ValueError(
        f"flash_attention_swift: {name} must have {layout.count(',') + 1} dimensions {layout}, "
        f"got shape {tuple(tensor.shape)}"
    )


def unit_last_stride(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor itself when its last stride is 1 (any other strides are passed as they are);
    otherwise a contiguous copy, the one case where the library cannot read the memory directly."""
    if tensor.stride(-1) == 1 or tensor.size(-1) <= 1:
        return tensor
    return tensor.contiguous()


def _input_fields(tensor: torch.Tensor, name: str, device: int, is_cuda: bool) -> tuple[torch.Tensor, tuple]:
    """The tensor as the library will read it (copied only if its last stride is not 1) and its
    fa_tensor fields. Its device must be q's: a foreign pointer would be read as host memory."""
    if tensor.get_device() != device or tensor.is_cuda != is_cuda or not (is_cuda or tensor.is_cpu):
        raise ValueError(f"flash_attention_swift: {name} is on {tensor.device}, expected the device of q")
    code = _DTYPE_CODES.get(tensor.dtype)
    if code is None:
        code = _dtype_code(tensor, name)  # raises
    strides = tensor.stride()
    if strides[-1] != 1:
        if tensor.size(-1) > 1:
            tensor = tensor.contiguous()
            strides = tensor.stride()
        else:  # a last axis of size 0 or 1, whose stride torch leaves free
            strides = (*strides[:-1], 1)
    return tensor, (
        tensor.data_ptr(),
        C.FA_DEVICE_CUDA if is_cuda else C.FA_DEVICE_CPU,
        device if is_cuda else 0,
        code,
        tensor.dim(),
        *tensor.shape,
        *strides,
    )


def _q_location(q: torch.Tensor) -> tuple[int, bool]:
    """q's device index (-1 for the CPU) and whether it is a CUDA tensor; other devices raise."""
    if q.is_cuda:
        return q.get_device(), True
    if not q.is_cpu:
        raise TypeError(f"flash_attention_swift: tensors on {q.device} are not supported (cpu or cuda)")
    return -1, False


def _pack(layout: struct.Struct, buffer, *fields) -> None:
    try:
        layout.pack_into(buffer, 0, *fields)
    except (struct.error, OverflowError) as error:
        # Only the options can be out of range (shapes, strides and pointers come from torch).
        scale, causal, left, right, softcap, deterministic = fields[-6:]
        raise ValueError(
            f"flash_attention_swift: an option is out of range ({error}): softmax_scale={scale}, "
            f"window_size=({left}, {right}), softcap={softcap}"
        ) from None


def _current_stream_getter():
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return raw
    return lambda index: torch.cuda.current_stream(index).cuda_stream


_current_stream = _current_stream_getter()


def forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """out [b, sq, hq, dv] (q's dtype) and lse float32 [b, hq, sq], new tensors on q's device."""
    if q.dim() != 4:
        raise _rank_error(q, "q")
    if k.dim() != 4:
        raise _rank_error(k, "k")
    if v.dim() != 4:
        raise _rank_error(v, "v")
    device, is_cuda = _q_location(q)
    q, q_fields = _input_fields(q, "q", device, is_cuda)
    k, k_fields = _input_fields(k, "k", device, is_cuda)
    v, v_fields = _input_fields(v, "v", device, is_cuda)
    batch, seqlen_q, heads_q, _ = q_fields[5:9]
    head_dim_v = v_fields[8]
    out = q.new_empty((batch, seqlen_q, heads_q, head_dim_v))
    lse = q.new_empty((batch, heads_q, seqlen_q), dtype=torch.float32)
    if poison_outputs:
        out.fill_(math.nan)
        lse.fill_(math.nan)
    device_type, device_index = q_fields[1], q_fields[2]
    row = heads_q * head_dim_v
    buffers = _buffers
    _pack(
        _FORWARD_LAYOUT,
        buffers.forward,
        *q_fields,
        *k_fields,
        *v_fields,
        out.data_ptr(), device_type, device_index, q_fields[3], 4,
        batch, seqlen_q, heads_q, head_dim_v, seqlen_q * row, row, head_dim_v, 1,
        lse.data_ptr(), device_type, device_index, C.FA_DTYPE_FLOAT32, 3,
        batch, heads_q, seqlen_q, heads_q * seqlen_q, seqlen_q, 1,
        _OPTIONS_SIZE, softmax_scale, causal, window_left, window_right, softcap, 0,
    )
    stream = _current_stream(device) if is_cuda else None
    status = _call_forward(*buffers.forward_args, stream)
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
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv (contiguous, the inputs' shapes and dtype) of sum(out * dout)."""
    for tensor, name in ((dout, "dout"), (q, "q"), (k, "k"), (v, "v"), (out, "out")):
        if tensor.dim() != 4:
            raise _rank_error(tensor, name)
    if lse.dim() != 3:
        raise _rank_error(lse, "lse", "(batch, heads, seqlen)")
    _lse_dtype_code(lse)
    device, is_cuda = _q_location(q)
    q, q_fields = _input_fields(q, "q", device, is_cuda)
    k, k_fields = _input_fields(k, "k", device, is_cuda)
    v, v_fields = _input_fields(v, "v", device, is_cuda)
    out, out_fields = _input_fields(out, "out", device, is_cuda)
    lse, lse_fields = _input_fields(lse, "lse", device, is_cuda)
    dout, dout_fields = _input_fields(dout, "dout", device, is_cuda)
    dq = q.new_empty(q.shape)
    dk = k.new_empty(k.shape)
    dv = v.new_empty(v.shape)
    if poison_outputs:
        for gradient in (dq, dk, dv):
            gradient.fill_(math.nan)
    _, dq_fields = _input_fields(dq, "dq", device, is_cuda)
    _, dk_fields = _input_fields(dk, "dk", device, is_cuda)
    _, dv_fields = _input_fields(dv, "dv", device, is_cuda)
    buffers = _buffers
    _pack(
        _BACKWARD_LAYOUT,
        buffers.backward,
        *q_fields,
        *k_fields,
        *v_fields,
        *out_fields,
        *lse_fields,
        *dout_fields,
        *dq_fields,
        *dk_fields,
        *dv_fields,
        _OPTIONS_SIZE, softmax_scale, causal, window_left, window_right, softcap, deterministic,
    )
    stream = _current_stream(device) if is_cuda else None
    status = _call_backward(*buffers.backward_args, stream)
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
