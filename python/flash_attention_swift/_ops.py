"""The attention operators registered with torch.library, and the eager fast path beside them.

`flash_attention_swift::fwd` and `flash_attention_swift::bwd` are custom ops with fake (meta)
implementations and autograd, so torch.compile traces them into its graph, torch.export and
opcheck see ordinary operators, and tensor subclasses and dispatch modes work.

A custom op costs tens of microseconds of Python dispatch per call (measured on the CPU with a
1x1x1x8 problem: 23 us without autograd and 80-120 us with it, against 12 us and 19-38 us on this
path, and 5 us and 7 us for F.scaled_dot_product_attention; python/benchmarks/overhead.py).
So in plain eager mode, with plain tensors and no mode, transform or compiler active, `attention`
calls the same implementation directly (through a torch.autograd.Function when a gradient is
needed). Both paths run the same library calls and give the same results; everything that is not
plain eager takes the registered op.
"""

# No `from __future__ import annotations`: torch.library infers the ops' schemas from these
# annotations, and torch 2.4 needs them as types, not strings.
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import _calls, _features

# softmax_scale, causal, window_left, window_right, softcap, deterministic, alibi_slopes,
# dropout_p, seed, offset.
_NON_DIFFERENTIABLE = (None,) * 10


def _check_same_device(q: Tensor, **others: Tensor) -> None:
    """The fake kernels' device check: the dispatcher sends a call that mixes meta tensors with
    real ones to the fake kernel, which must refuse it as the real one would."""
    for name, tensor in others.items():
        if tensor.device != q.device:
            raise ValueError(f"flash_attention_swift: {name} is on {tensor.device}, expected the device of q ({q.device})")


@torch.library.custom_op("flash_attention_swift::fwd", mutates_args=(), device_types=("cpu", "cuda"))
def fwd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
    alibi_slopes: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    seed: int = 0,
    offset: int = 0,
) -> Tuple[Tensor, Tensor]:
    """out (batch, seqlen_q, heads_q, head_dim_v) and lse float32 (batch, heads_q, seqlen_q).
    `deterministic` only matters for the backward; it is an argument so autograd sees it.
    Dropout's seed and offset are drawn by the caller (`attention`), so the op is a function of
    its arguments and the backward regenerates the same mask."""
    return _calls.forward(
        q, k, v, softmax_scale, causal, window_left, window_right, softcap,
        _features.host_slopes(alibi_slopes, q), (dropout_p, seed, offset),
    )


@fwd.register_fake
def _fwd_fake(
    q, k, v, softmax_scale, causal, window_left, window_right, softcap, deterministic,
    alibi_slopes=None, dropout_p=0.0, seed=0, offset=0,
):
    for tensor, name in ((q, "q"), (k, "k"), (v, "v")):
        if tensor.dim() != 4:
            raise ValueError(
                f"flash_attention_swift: {name} must have 4 dimensions (batch, seqlen, heads, head_dim), "
                f"got shape {tuple(tensor.shape)}"
            )
    _check_same_device(q, k=k, v=v)
    batch, seqlen_q, heads_q, _ = q.shape
    out = q.new_empty((batch, seqlen_q, heads_q, v.shape[3]))
    lse = q.new_empty((batch, heads_q, seqlen_q), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("flash_attention_swift::bwd", mutates_args=(), device_types=("cpu", "cuda"))
def bwd(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
    alibi_slopes: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    seed: int = 0,
    offset: int = 0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """dq, dk, dv of sum(out * dout), from the forward's inputs, out and lse (and its ALiBi slopes
    and dropout seed and offset)."""
    return _calls.backward(
        dout, q, k, v, out, lse, softmax_scale, causal, window_left, window_right, softcap, deterministic,
        _features.host_slopes(alibi_slopes, q), (dropout_p, seed, offset),
    )


@bwd.register_fake
def _bwd_fake(
    dout, q, k, v, out, lse, softmax_scale, causal, window_left, window_right, softcap, deterministic,
    alibi_slopes=None, dropout_p=0.0, seed=0, offset=0,
):
    _check_same_device(q, k=k, v=v, out=out, lse=lse, dout=dout)
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, *options = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.options = tuple(options)
    # The backward gives no gradient through the LSE (nor does FlashAttention's); marking it
    # non-differentiable makes a loss that reads it fail loudly instead of going silently wrong.
    ctx.mark_non_differentiable(lse)


def _fwd_backward(ctx, dout, dlse):
    q, k, v, out, lse = ctx.saved_tensors
    dq, dk, dv = bwd(dout, q, k, v, out, lse, *ctx.options)
    return dq, dk, dv, *_NON_DIFFERENTIABLE


fwd.register_autograd(_fwd_backward, setup_context=_setup_context)


class _EagerAttention(torch.autograd.Function):
    """The op's autograd in plain eager mode, without the dispatcher's Python round trips."""

    @staticmethod
    def forward(
        ctx, q, k, v, softmax_scale, causal, window_left, window_right, softcap, deterministic,
        slopes=None, dropout=_calls._NO_DROPOUT,
    ):
        out, lse = _calls.forward(q, k, v, softmax_scale, causal, window_left, window_right, softcap, slopes, dropout)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = (softmax_scale, causal, window_left, window_right, softcap, deterministic, slopes, dropout)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @once_differentiable  # no double backward (nor has FlashAttention): a clear error, not zeros
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _calls.backward(dout, q, k, v, out, lse, *ctx.options)
        return dq, dk, dv, *((None,) * 8)


_Tensor = torch.Tensor
_any_autocast = torch._C._is_any_autocast_enabled
_is_compiling = torch.compiler.is_compiling
_torch_function_mode_enabled = torch._C._is_torch_function_mode_enabled
_dispatch_stack_depth = torch._C._len_torch_dispatch_stack
_functorch_interpreter = torch._C._functorch.peek_interpreter_stack
_grad_enabled = torch.is_grad_enabled


def _autocast(q: Tensor, k: Tensor, v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Under torch.autocast for q's device, float32 inputs are cast to the autocast dtype, as
    autocast does for F.scaled_dot_product_attention."""
    check_tensor(q, "q")
    device_type = q.device.type
    if not torch.is_autocast_enabled(device_type):
        return q, k, v
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if isinstance(t, Tensor) and t.dtype == torch.float32 else t for t in (q, k, v))


def _plain_eager(q: Tensor, k: Tensor, v: Tensor) -> bool:
    """True when nothing but the op's own kernels would see this call: not compiling or
    exporting, plain tensors (no subclass such as FakeTensor or DTensor), no torch-function or
    dispatch mode, no functorch transform (vmap, grad)."""
    return (
        not _is_compiling()
        and type(q) is _Tensor
        and type(k) is _Tensor
        and type(v) is _Tensor
        and not _torch_function_mode_enabled()
        and _dispatch_stack_depth() == 0
        and _functorch_interpreter() is None
    )


def check_tensor(tensor, name: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"flash_attention_swift: {name} must be a torch.Tensor (batch, seqlen, heads, head_dim), "
            f"got {type(tensor).__name__}"
        )


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    softmax_scale: Optional[float],
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
    alibi_slopes: Optional[Tensor] = None,
    dropout_p: float = 0.0,
) -> Tuple[Tensor, Tensor]:
    """(out, lse) with autograd: the registered op, or its eager fast path. softmax_scale None
    means 1/sqrt(head_dim). With dropout_p > 0 the seed and offset are drawn here, once per call,
    from torch's default generator of q's device (`_features.dropout_state`)."""
    if _any_autocast():
        q, k, v = _autocast(q, k, v)
    if alibi_slopes is None and dropout_p == 0.0:
        dropout = _calls._NO_DROPOUT
    else:
        check_tensor(q, "q")
        if dropout_p != 0.0 and _is_compiling():
            # A seed drawn while tracing would be baked into the graph: every call the same mask.
            raise NotImplementedError("flash_attention_swift: dropout_p > 0 under torch.compile is not supported yet")
        dropout = _features.dropout_state(q, dropout_p)
    if _plain_eager(q, k, v):
        slopes = _features.host_slopes(alibi_slopes, q) if alibi_slopes is not None else None
        if _grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
            return _EagerAttention.apply(
                q, k, v, softmax_scale, causal, window_left, window_right, softcap, deterministic, slopes, dropout
            )
        return _calls.forward(q, k, v, softmax_scale, causal, window_left, window_right, softcap, slopes, dropout)
    check_tensor(q, "q")
    check_tensor(k, "k")
    check_tensor(v, "v")
    if softmax_scale is None:
        if q.dim() != 4:
            raise ValueError(
                f"flash_attention_swift: q must have 4 dimensions (batch, seqlen, heads, head_dim), "
                f"got shape {tuple(q.shape)}"
            )
        head_dim = q.shape[3]
        softmax_scale = head_dim ** -0.5 if head_dim > 0 else 1.0
    return fwd(q, k, v, softmax_scale, causal, window_left, window_right, softcap, deterministic, alibi_slopes, *dropout)
