"""Ring attention over a torch.distributed process group: the forward passes K/V around the
ring, merging each block's result by its LSE; the backward passes K/V around again with the dK/dV
accumulated so far for each block (float32), which arrive home after the last step.

Each step's exchange starts before that step's computation (the next K/V block is in flight
while this one is used), and the dK/dV of a block leave as soon as its gradients are added.
"""

from __future__ import annotations

import torch

from . import _blocks, _layout
from ._ring import Ring

_FLOAT32 = torch.float32


def ring_forward(ring: Ring, geometry, q, k, v, scale: float, causal: bool, layout: str):
    """(out in q's dtype, LSE float32 in the library's layout) of this rank's queries against
    the whole sequence."""
    accumulator = _blocks.Accumulator()
    world, rank = ring.world_size, ring.rank
    for step in range(world):
        pending = ring.exchange((k, v)) if step + 1 < world else None
        block = _layout.block(layout, causal, rank, (rank - step) % world)
        if block is not None:
            _blocks.forward_block(geometry, q, k, v, block, scale, accumulator)
        if pending is not None:
            k, v = pending.wait()
    return accumulator.result(geometry, q.dtype)


def ring_backward(ring: Ring, geometry, dout, q, k, v, out, lse, scale: float, causal: bool, layout: str, deterministic: bool):
    """dq, dk, dv of this rank's shard (q's, k's and v's dtypes)."""
    world, rank = ring.world_size, ring.rank
    dq = torch.zeros(q.shape, dtype=_FLOAT32, device=q.device)
    key_dtype, value_dtype = k.dtype, v.dtype
    gradients_in_flight = None
    for step in range(world):
        pending = ring.exchange((k, v)) if step + 1 < world else None
        dk = torch.zeros(k.shape, dtype=_FLOAT32, device=k.device)
        dv = torch.zeros(v.shape, dtype=_FLOAT32, device=v.device)
        block = _layout.block(layout, causal, rank, (rank - step) % world)
        if block is not None:
            _blocks.backward_block(geometry, dout, q, k, v, out, lse, block, scale, deterministic, dq, dk, dv)
        if gradients_in_flight is not None:
            # What the ranks before this one added for the same block.
            dk_before, dv_before = gradients_in_flight.wait()
            dk += dk_before
            dv += dv_before
        if pending is not None:
            k, v = pending.wait()
        gradients_in_flight = ring.exchange((dk, dv))
    # After the last step each block's gradients have visited every rank and come home.
    dk, dv = gradients_in_flight.wait()
    return dq.to(q.dtype), dk.to(key_dtype), dv.to(value_dtype)


class RingAttention(torch.autograd.Function):
    """Fixed-length ring attention: q, k, v are this rank's (batch, seqlen_local, heads, dim)."""

    @staticmethod
    def forward(ctx, q, k, v, scale, causal, group, layout, deterministic):
        ring = Ring(group)
        geometry = _blocks.FixedRows(q.shape[1])
        k, v = k.contiguous(), v.contiguous()
        out, lse = ring_forward(ring, geometry, q, k, v, scale, causal, layout)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.ring, ctx.geometry = ring, geometry
        ctx.options = (scale, causal, layout, deterministic)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        scale, causal, layout, deterministic = ctx.options
        dq, dk, dv = ring_backward(ctx.ring, ctx.geometry, dout, q, k, v, out, lse, scale, causal, layout, deterministic)
        return dq, dk, dv, None, None, None, None, None


class RingVarlenAttention(torch.autograd.Function):
    """Variable-length ring attention: q, k, v are this rank's packed (total_local, heads, dim),
    cu_seqlens the local sequences' boundaries (the same on every rank)."""

    @staticmethod
    def forward(ctx, q, k, v, cu_seqlens, max_seqlen, scale, causal, group, layout, deterministic):
        ring = Ring(group)
        geometry = _blocks.VarlenRows(cu_seqlens, max_seqlen, q.shape[0], layout == "zigzag" and causal)
        k, v = k.contiguous(), v.contiguous()
        out, lse = ring_forward(ring, geometry, q, k, v, scale, causal, layout)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.ring, ctx.geometry = ring, geometry
        ctx.options = (scale, causal, layout, deterministic)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        scale, causal, layout, deterministic = ctx.options
        dq, dk, dv = ring_backward(ctx.ring, ctx.geometry, dout, q, k, v, out, lse, scale, causal, layout, deterministic)
        return (dq, dk, dv, *(None,) * 7)
