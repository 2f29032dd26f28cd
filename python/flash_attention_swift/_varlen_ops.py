"""The variable-length and KV-cache operators registered with torch.library, and their eager
fast path (as for the fixed-length ops in _ops).

`flash_attention_swift::varlen_fwd` / `::varlen_bwd` are functional ops with fake kernels and a
registered autograd formula. `flash_attention_swift::kvcache_fwd` declares that it mutates
k_cache and v_cache (the new keys and values are appended in place), so torch.compile
functionalizes it correctly. It has no backward (nor has FlashAttention's); torch refuses
autograd formulas for mutating ops, and its default for an op without one raises when a gradient
is asked through it (never a silent zero).
"""

# No `from __future__ import annotations`: torch.library reads the schemas from these
# annotations, and torch 2.4 needs them as types.
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import _ops, _varlen_calls

_NON_DIFFERENTIABLE = (None,) * 12
_increment_version = torch.autograd.graph.increment_version
_FLOAT32 = torch.float32


def _check_fake_rank(tensors, rank: int, layout: str) -> None:
    for name, tensor in tensors.items():
        if tensor.dim() != rank:
            raise ValueError(
                f"flash_attention_swift: {name} must have {rank} dimensions {layout}, got shape {tuple(tensor.shape)}"
            )


def _present(**tensors):
    return {name: tensor for name, tensor in tensors.items() if tensor is not None}


@torch.library.custom_op("flash_attention_swift::varlen_fwd", mutates_args=(), device_types=("cpu", "cuda"))
def varlen_fwd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens_q: Tensor,
    cu_seqlens_k: Tensor,
    seqused_q: Optional[Tensor],
    seqused_k: Optional[Tensor],
    max_seqlen_q: int,
    max_seqlen_k: int,
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
) -> Tuple[Tensor, Tensor]:
    """out (total_q, heads_q, head_dim_v) and lse float32 (heads_q, total_q) of a packed batch."""
    return _varlen_calls.varlen_forward(
        q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q, max_seqlen_k,
        softmax_scale, causal, window_left, window_right, softcap,
    )


@varlen_fwd.register_fake
def _varlen_fwd_fake(
    q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q, max_seqlen_k,
    softmax_scale, causal, window_left, window_right, softcap, deterministic,
):
    _check_fake_rank(dict(q=q, k=k, v=v), 3, "(total_tokens, heads, head_dim)")
    _ops._check_same_device(
        q, k=k, v=v, **_present(cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, seqused_q=seqused_q, seqused_k=seqused_k)
    )
    total_q, heads_q, _ = q.shape
    return q.new_empty((total_q, heads_q, v.shape[2])), q.new_empty((heads_q, total_q), dtype=_FLOAT32)


@torch.library.custom_op("flash_attention_swift::varlen_bwd", mutates_args=(), device_types=("cpu", "cuda"))
def varlen_bwd(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    cu_seqlens_q: Tensor,
    cu_seqlens_k: Tensor,
    seqused_q: Optional[Tensor],
    seqused_k: Optional[Tensor],
    max_seqlen_q: int,
    max_seqlen_k: int,
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    deterministic: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    """dq, dk, dv of sum(out * dout) for a packed batch."""
    return _varlen_calls.varlen_backward(
        dout, q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q, max_seqlen_k,
        softmax_scale, causal, window_left, window_right, softcap, deterministic,
    )


@varlen_bwd.register_fake
def _varlen_bwd_fake(dout, q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *options):
    _ops._check_same_device(q, k=k, v=v, out=out, lse=lse, dout=dout)
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _varlen_setup_context(ctx, inputs, output):
    q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *options = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    ctx.options = tuple(options)  # max_seqlen_q, max_seqlen_k, scale, causal, window, softcap, deterministic
    ctx.mark_non_differentiable(lse)


def _varlen_fwd_backward(ctx, dout, dlse):
    q, k, v, out, lse, *indexes = ctx.saved_tensors
    dq, dk, dv = varlen_bwd(dout, q, k, v, out, lse, *indexes, *ctx.options)
    return dq, dk, dv, *_NON_DIFFERENTIABLE


varlen_fwd.register_autograd(_varlen_fwd_backward, setup_context=_varlen_setup_context)


class _EagerVarlen(torch.autograd.Function):
    """varlen_fwd's autograd in plain eager mode, without the dispatcher's Python round trips."""

    @staticmethod
    def forward(ctx, q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *options):
        max_seqlen_q, max_seqlen_k, scale, causal, left, right, softcap, _ = options
        out, lse = _varlen_calls.varlen_forward(
            q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q, max_seqlen_k,
            scale, causal, left, right, softcap,
        )
        ctx.save_for_backward(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
        ctx.options = options
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dlse):
        q, k, v, out, lse, *indexes = ctx.saved_tensors
        dq, dk, dv = _varlen_calls.varlen_backward(dout, q, k, v, out, lse, *indexes, *ctx.options)
        return dq, dk, dv, *_NON_DIFFERENTIABLE


@torch.library.custom_op(
    "flash_attention_swift::kvcache_fwd", mutates_args=("k_cache", "v_cache"), device_types=("cpu", "cuda")
)
def kvcache_fwd(
    q: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    k: Optional[Tensor],
    v: Optional[Tensor],
    cache_seqlens: Tensor,
    cache_batch_idx: Optional[Tensor],
    page_table: Optional[Tensor],
    softmax_scale: float,
    causal: bool,
    window_left: int,
    window_right: int,
    softcap: float,
    num_splits: int,
) -> Tuple[Tensor, Tensor]:
    """out (batch, seqlen_q, heads_q, head_dim_v) and lse float32 (batch, heads_q, seqlen_q); k and
    v, when given, are written into k_cache and v_cache first."""
    return _varlen_calls.kvcache_forward(
        q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, page_table, softmax_scale, causal,
        window_left, window_right, softcap, num_splits,
    )


@kvcache_fwd.register_fake
def _kvcache_fwd_fake(q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, page_table, *options):
    _check_fake_rank(_present(q=q, k_cache=k_cache, v_cache=v_cache, k=k, v=v), 4, "(batch, seqlen, heads, head_dim)")
    _ops._check_same_device(
        q, k_cache=k_cache, v_cache=v_cache,
        **_present(k=k, v=v, cache_seqlens=cache_seqlens, cache_batch_idx=cache_batch_idx, page_table=page_table),
    )
    batch, seqlen_q, heads_q, _ = q.shape
    return q.new_empty((batch, seqlen_q, heads_q, v_cache.shape[3])), q.new_empty((batch, heads_q, seqlen_q), dtype=_FLOAT32)




def _plain_eager(*tensors) -> bool:
    """_ops._plain_eager for any number of tensors (None for an absent optional one)."""
    return (
        not _ops._is_compiling()
        and all(tensor is None or type(tensor) is _ops._Tensor for tensor in tensors)
        and not _ops._torch_function_mode_enabled()
        and _ops._dispatch_stack_depth() == 0
        and _ops._functorch_interpreter() is None
    )


def _default_scale(softmax_scale, q: Tensor, rank: int, layout: str) -> float:
    if softmax_scale is not None:
        return softmax_scale
    if q.dim() != rank:
        raise ValueError(f"flash_attention_swift: q must have {rank} dimensions {layout}, got shape {tuple(q.shape)}")
    head_dim = q.shape[-1]
    return head_dim ** -0.5 if head_dim > 0 else 1.0


def varlen_attention(
    q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, max_seqlen_q, max_seqlen_k,
    softmax_scale, causal, window_left, window_right, softcap, deterministic,
) -> Tuple[Tensor, Tensor]:
    """(out, lse) of a packed batch with autograd: the registered op, or its eager fast path.
    softmax_scale None means 1/sqrt(head_dim)."""
    for tensor, name in ((q, "q"), (k, "k"), (v, "v")):
        _ops.check_tensor(tensor, name)
    if _ops._any_autocast():
        q, k, v = _ops._autocast(q, k, v)
    indexes = (cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    options = (max_seqlen_q, max_seqlen_k, softmax_scale, causal, window_left, window_right, softcap)
    if _plain_eager(q, k, v, *indexes):
        if _ops._grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
            return _EagerVarlen.apply(q, k, v, *indexes, *options, deterministic)
        return _varlen_calls.varlen_forward(q, k, v, *indexes, *options)
    scale = _default_scale(softmax_scale, q, 3, "(total_tokens, heads, head_dim)")
    return varlen_fwd(
        q, k, v, *indexes, max_seqlen_q, max_seqlen_k, scale, causal, window_left, window_right, softcap, deterministic
    )


def kvcache_attention(
    q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, page_table, softmax_scale, causal,
    window_left, window_right, softcap, num_splits,
) -> Tuple[Tensor, Tensor]:
    """(out, lse) against a KV cache, k and v appended in place first: the registered op, or the
    library call itself in plain eager mode when no gradient is asked for."""
    tensors = (q, k_cache, v_cache, k, v, cache_seqlens, cache_batch_idx, page_table)
    wants_grad = _ops._grad_enabled() and (
        q.requires_grad or k_cache.requires_grad or v_cache.requires_grad
        or (k is not None and k.requires_grad) or (v is not None and v.requires_grad)
    )
    if _plain_eager(*tensors) and not wants_grad:
        result = _varlen_calls.kvcache_forward(
            *tensors, softmax_scale, causal, window_left, window_right, softcap, num_splits
        )
        if k is not None:
            # The library wrote through the data pointers; tell autograd the caches changed, as
            # the registered op (declared mutating) does.
            _increment_version(k_cache)
            _increment_version(v_cache)
        return result
    scale = _default_scale(softmax_scale, q, 4, "(batch, seqlen, heads, head_dim)")
    return kvcache_fwd(*tensors, scale, causal, window_left, window_right, softcap, num_splits)
