"""The ring in one process: W ranks' shards, every step's blocks computed one after another with
the same block code as the distributed ring (_blocks), K/V "received" by indexing the source
rank's shard and each block's dK/dV added where it belongs. No communication, so it checks the
kernels, the block rules and the merge on one device (a GPU included) and times the computation
a ring does, without the transfers."""

from __future__ import annotations

import torch

from . import _blocks, _layout

_FLOAT32 = torch.float32


def simulated_forward(geometry, qs, ks, vs, scale: float, causal: bool, layout: str):
    """[(out, LSE)] per rank, as the distributed ring_forward returns them on each rank."""
    world = len(qs)
    accumulators = [_blocks.Accumulator() for _ in range(world)]
    for step in range(world):
        for rank in range(world):
            source = (rank - step) % world
            block = _layout.block(layout, causal, rank, source)
            if block is not None:
                _blocks.forward_block(geometry, qs[rank], ks[source], vs[source], block, scale, accumulators[rank])
    return [accumulator.result(geometry, q.dtype) for accumulator, q in zip(accumulators, qs)]


def simulated_backward(geometry, douts, qs, ks, vs, outs, lses, scale: float, causal: bool, layout: str, deterministic: bool):
    """(dqs, dks, dvs) per rank."""
    world = len(qs)
    dqs = [torch.zeros(q.shape, dtype=_FLOAT32, device=q.device) for q in qs]
    dks = [torch.zeros(k.shape, dtype=_FLOAT32, device=k.device) for k in ks]
    dvs = [torch.zeros(v.shape, dtype=_FLOAT32, device=v.device) for v in vs]
    for step in range(world):
        for rank in range(world):
            source = (rank - step) % world
            block = _layout.block(layout, causal, rank, source)
            if block is not None:
                _blocks.backward_block(
                    geometry, douts[rank], qs[rank], ks[source], vs[source], outs[rank], lses[rank],
                    block, scale, deterministic, dqs[rank], dks[source], dvs[source],
                )
    cast = lambda gradients, tensors: [g.to(t.dtype) for g, t in zip(gradients, tensors)]  # noqa: E731
    return cast(dqs, qs), cast(dks, ks), cast(dvs, vs)


class SimulatedRing(torch.autograd.Function):
    """Differentiable simulated ring over lists of shards: inputs qs + ks + vs, outputs the
    ranks' outs, then their LSEs (non-differentiable)."""

    @staticmethod
    def forward(ctx, geometry, scale, causal, layout, deterministic, *shards):
        world = len(shards) // 3
        qs, ks, vs = shards[:world], shards[world : 2 * world], shards[2 * world :]
        results = simulated_forward(geometry, qs, ks, vs, scale, causal, layout)
        outs = [out for out, _ in results]
        lses = [lse for _, lse in results]
        ctx.save_for_backward(*qs, *ks, *vs, *outs, *lses)
        ctx.world = world
        ctx.options = (geometry, scale, causal, layout, deterministic)
        ctx.mark_non_differentiable(*lses)
        return (*outs, *lses)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *gradients):
        world = ctx.world
        saved = ctx.saved_tensors
        qs, ks, vs, outs, lses = (saved[i * world : (i + 1) * world] for i in range(5))
        douts = [g if g is not None else torch.zeros_like(o) for g, o in zip(gradients[:world], outs)]
        geometry, scale, causal, layout, deterministic = ctx.options
        dqs, dks, dvs = simulated_backward(geometry, douts, qs, ks, vs, outs, lses, scale, causal, layout, deterministic)
        return (None,) * 5 + (*dqs, *dks, *dvs)
