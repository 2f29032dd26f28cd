"""The fp8 (torch.float8_e4m3fn) forward, FlashAttention-3's `q_descale`/`k_descale`/`v_descale`
path: q, k, v in e4m3, float32 descale factors of shape (batch, nheads_k) (None: 1), output
bfloat16. Forward only, like FA3's: it is a plain call, not a custom op with autograd, and fp8
tensors do not take gradients.

Not the hot path of training, so it fills ctypes structures per call instead of the packed
per-thread buffers of `_calls`; the options are version 3 of fa_options, which carries pointers
to the descale descriptors after version 2's ALiBi and dropout fields (left at none here).
"""

from __future__ import annotations

import ctypes

import torch

from . import _library as C
from ._calls import _current_stream, _location, _raise_status, library

FLOAT8 = getattr(torch, "float8_e4m3fn", None)
FA_DTYPE_FLOAT8_E4M3 = 4

_CODES = {torch.float32: C.FA_DTYPE_FLOAT32, torch.float16: C.FA_DTYPE_FLOAT16, torch.bfloat16: C.FA_DTYPE_BFLOAT16}
if FLOAT8 is not None:
    _CODES[FLOAT8] = FA_DTYPE_FLOAT8_E4M3


# fa_options version 3 (version 2's ALiBi and dropout, then the descale pointers).
FaOptionsFP8 = C.FaOptionsV3


def is_fp8(tensor) -> bool:
    return FLOAT8 is not None and isinstance(tensor, torch.Tensor) and tensor.dtype == FLOAT8


def _descriptor(tensor: torch.Tensor, is_cuda: bool, device: int) -> C.FaTensor:
    descriptor = C.FaTensor()
    descriptor.data = tensor.data_ptr() or None
    descriptor.device_type = C.FA_DEVICE_CUDA if is_cuda else C.FA_DEVICE_CPU
    descriptor.device_index = device if is_cuda else 0
    descriptor.dtype = _CODES[tensor.dtype]
    descriptor.rank = tensor.dim()
    for axis, (size, stride) in enumerate(zip(tensor.shape, tensor.stride())):
        descriptor.shape[axis] = size
        descriptor.strides[axis] = stride if axis < tensor.dim() - 1 or size > 1 else 1
    return descriptor


def forward(q, k, v, q_descale, k_descale, v_descale, softmax_scale, causal, window, softcap):
    """out (bfloat16, (batch, seqlen_q, nheads, headdim_v)) and softmax_lse (float32, (batch,
    nheads, seqlen_q)) of fp8 q, k, v with their descale factors."""
    if FLOAT8 is None:
        raise TypeError("flash_attention_swift: this torch has no float8_e4m3fn")
    for tensor, name in ((q, "q"), (k, "k"), (v, "v")):
        if not is_fp8(tensor):
            dtype = getattr(tensor, "dtype", type(tensor).__name__)
            raise TypeError(f"flash_attention_swift: {name} has dtype {dtype}; fp8 attention needs torch.float8_e4m3fn q, k and v")
        if tensor.dim() != 4:
            raise ValueError(f"flash_attention_swift: {name} must have 4 dimensions (batch, seqlen, heads, head_dim)")
    device, is_cuda = _location(q)
    q, k, v = (t if t.stride(-1) == 1 or t.size(-1) <= 1 else t.contiguous() for t in (q, k, v))
    factors = []
    for factor, name in ((q_descale, "q_descale"), (k_descale, "k_descale"), (v_descale, "v_descale")):
        if factor is not None:
            if not isinstance(factor, torch.Tensor) or factor.dtype != torch.float32:
                raise TypeError(f"flash_attention_swift: {name} must be a torch.float32 tensor (batch, nheads_k)")
            if factor.device != q.device:
                raise ValueError(f"flash_attention_swift: {name} is on {factor.device}, expected the device of q")
            if factor.dim() == 2 and factor.stride(-1) != 1 and factor.size(-1) > 1:
                factor = factor.contiguous()
        factors.append(factor)
    for tensor, name in ((k, "k"), (v, "v")):
        if tensor.device != q.device:
            raise ValueError(f"flash_attention_swift: {name} is on {tensor.device}, expected the device of q")
    batch, seqlen_q, heads, _ = q.shape
    out = torch.empty((batch, seqlen_q, heads, v.shape[3]), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((batch, heads, seqlen_q), dtype=torch.float32, device=q.device)
    descriptors = [_descriptor(t, is_cuda, device) for t in (q, k, v, out, lse)]
    factor_descriptors = [None if f is None else _descriptor(f, is_cuda, device) for f in factors]
    options = FaOptionsFP8()
    options.struct_size = ctypes.sizeof(FaOptionsFP8)
    options.softmax_scale = 0.0 if softmax_scale is None else softmax_scale
    options.causal = 1 if causal else 0
    options.window_left, options.window_right = window
    options.softcap = softcap
    options.deterministic = 0
    options.q_descale, options.k_descale, options.v_descale = (
        None if d is None else ctypes.addressof(d) for d in factor_descriptors
    )
    lib = library()
    if lib.fa_options_default().struct_size < ctypes.sizeof(FaOptionsFP8):
        raise NotImplementedError("flash_attention_swift: this libflashattention predates fp8 (no descale fields)")
    status = lib.fa_forward(
        *(ctypes.addressof(d) for d in descriptors), ctypes.addressof(options),
        _current_stream(device) if is_cuda else None,
    )
    if status != C.FA_SUCCESS:
        _raise_status(status)
    return out, lse
