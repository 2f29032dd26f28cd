"""Context parallelism: one sequence spread over the ranks of a torch.distributed process group,
attention computed as a ring (ring-flash-attention's algorithm, on this package's kernels).

    import torch.distributed as dist
    from flash_attention_swift.context_parallel import ring_flash_attn_func, shard, unshard

    local_q, local_k, local_v = (shard(t, dist.get_rank(), dist.get_world_size()) for t in (q, k, v))
    local_out = ring_flash_attn_func(local_q, local_k, local_v, causal=True)   # differentiable
    out = unshard(all_gathered_local_outs)                                      # if wanted

Each rank holds its shard of q, k and v; K/V blocks travel around the ring (the next block's
transfer overlapping the current block's attention), the partial results merge exactly by their
LSEs, and the backward sends dK/dV around the ring with K/V. Layouts (see _layout): "zigzag"
(rank r holds chunks r and 2W-1-r of 2W equal chunks: balanced causal work) and "contiguous"
(chunk r of W). The simulated ring runs the same block code for W ranks in one process.
"""

from __future__ import annotations

import torch

from .. import _ops
from . import _blocks, _layout
from ._distributed import RingAttention, RingVarlenAttention
from ._sharding import local_cu_seqlens, shard, shard_varlen, unshard, unshard_varlen
from ._simulated import SimulatedRing

LAYOUTS = _layout.LAYOUTS


def ring_flash_attn_func(
    q, k, v, softmax_scale=None, causal=False, group=None, layout="zigzag", *, deterministic=False, return_attn_probs=False
):
    """This rank's output shard of attention over the whole sequence, differentiable.

    q, k, v: this rank's shard, (batch, seqlen_local, heads, head_dim), heads_kv dividing heads_q
    (GQA); the same seqlen_local on every rank, and for layout "zigzag" with causal=True an even
    one (the sequence is 2W equal chunks: a global length that is a multiple of 2W). group: the
    process group (default: the world). Returns out (batch, seqlen_local, heads, head_dim_v), or
    (out, softmax_lse) with return_attn_probs=True (float32 (batch, heads, seqlen_local), the LSE
    over the whole sequence; not differentiable)."""
    q, k, v = _inputs(q, k, v, 4, "(batch, seqlen_local, heads, head_dim)")
    _layout.check_layout(layout)
    if k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2]:
        raise ValueError(
            f"flash_attention_swift: q, k and v must have the same batch and local sequence length, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if layout == "zigzag" and causal and q.shape[1] % 2:
        raise ValueError(
            f"flash_attention_swift: seqlen_local = {q.shape[1]} must be even for layout 'zigzag' "
            "(two equal chunks per rank: a global length that is a multiple of 2 x world size)"
        )
    scale = _blocks.default_scale(softmax_scale, q)
    out, lse = RingAttention.apply(q, k, v, scale, bool(causal), group, layout, bool(deterministic))
    return (out, lse) if return_attn_probs else out


def ring_flash_attn_varlen_func(
    q, k, v, cu_seqlens, max_seqlen, softmax_scale=None, causal=False, group=None, layout="zigzag", *,
    deterministic=False, return_attn_probs=False,
):
    """Ring attention over a packed batch of sequences, each one spread over the ranks.

    Every sequence is cut into the layout's chunks (W, or 2W for "zigzag"; its length a multiple
    of that) and each rank holds its chunks of every sequence, packed in sequence order
    (`shard_varlen` does this): so every rank has the same local cu_seqlens, the global ones
    divided by W, and max_seqlen is the longest local sequence. q, k, v: (total_local, heads,
    head_dim); cu_seqlens: int32 on q's device, cu_seqlens[-1] == total_local. Returns out
    (total_local, heads, head_dim_v), or (out, softmax_lse (heads, total_local)) with
    return_attn_probs=True. Causal is per sequence."""
    q, k, v = _inputs(q, k, v, 3, "(total_local, heads, head_dim)")
    _layout.check_layout(layout)
    if k.shape[0] != q.shape[0] or v.shape[0] != q.shape[0]:
        raise ValueError(
            f"flash_attention_swift: q, k and v must have the same local token count, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    _check_cu_seqlens(cu_seqlens, q, layout == "zigzag" and causal)
    scale = _blocks.default_scale(softmax_scale, q)
    out, lse = RingVarlenAttention.apply(
        q, k, v, cu_seqlens, int(max_seqlen), scale, bool(causal), group, layout, bool(deterministic)
    )
    return (out, lse) if return_attn_probs else out


def simulated_ring_flash_attn_func(q_shards, k_shards, v_shards, softmax_scale=None, causal=False, layout="zigzag", *, deterministic=False):
    """What ring_flash_attn_func returns on each of W = len(q_shards) ranks, computed in this
    process with the same block code (no communication): [(out, lse)] per rank, outs
    differentiable with respect to every shard."""
    world = _check_shards(q_shards, k_shards, v_shards)
    _layout.check_layout(layout)
    geometry = _blocks.FixedRows(q_shards[0].shape[1])
    scale = _blocks.default_scale(softmax_scale, q_shards[0])
    results = SimulatedRing.apply(geometry, scale, bool(causal), layout, bool(deterministic), *q_shards, *k_shards, *v_shards)
    return list(zip(results[:world], results[world:]))


def simulated_ring_flash_attn_varlen_func(
    q_shards, k_shards, v_shards, cu_seqlens, max_seqlen, softmax_scale=None, causal=False, layout="zigzag", *,
    deterministic=False,
):
    """The varlen form of simulated_ring_flash_attn_func (cu_seqlens, max_seqlen: the local ones)."""
    world = _check_shards(q_shards, k_shards, v_shards)
    _layout.check_layout(layout)
    _check_cu_seqlens(cu_seqlens, q_shards[0], layout == "zigzag" and causal)
    geometry = _blocks.VarlenRows(cu_seqlens, int(max_seqlen), q_shards[0].shape[0], layout == "zigzag" and causal)
    scale = _blocks.default_scale(softmax_scale, q_shards[0])
    results = SimulatedRing.apply(geometry, scale, bool(causal), layout, bool(deterministic), *q_shards, *k_shards, *v_shards)
    return list(zip(results[:world], results[world:]))


def _check_shards(q_shards, k_shards, v_shards) -> int:
    world = len(q_shards)
    if not world or len(k_shards) != world or len(v_shards) != world:
        raise ValueError("flash_attention_swift: q_shards, k_shards and v_shards must be equally long, non-empty lists")
    return world


def _inputs(q, k, v, rank: int, layout: str):
    for tensor, name in ((q, "q"), (k, "k"), (v, "v")):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"flash_attention_swift: {name} must be a torch.Tensor {layout}, got {type(tensor).__name__}")
        if tensor.dim() != rank:
            raise ValueError(f"flash_attention_swift: {name} must have {rank} dimensions {layout}, got shape {tuple(tensor.shape)}")
    if _ops._any_autocast():
        q, k, v = _ops._autocast(q, k, v)
    return q, k, v


def _check_cu_seqlens(cu_seqlens, q, halves: bool) -> None:
    """cu_seqlens' type and device; on the CPU also its values (CUDA index data is trusted, as
    FlashAttention trusts it, to keep the host from waiting for the device)."""
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise TypeError("flash_attention_swift: cu_seqlens must be a 1-dimensional torch.int32 tensor")
    if cu_seqlens.device != q.device:
        raise ValueError(f"flash_attention_swift: cu_seqlens is on {cu_seqlens.device}, q on {q.device}")
    if cu_seqlens.is_cuda:
        return
    values = cu_seqlens.tolist()
    if not values or values[0] != 0 or values[-1] != q.shape[0] or any(b < a for a, b in zip(values, values[1:])):
        raise ValueError(
            f"flash_attention_swift: cu_seqlens must rise from 0 to the local token count {q.shape[0]}, got {values}"
        )
    if halves and any((b - a) % 2 for a, b in zip(values, values[1:])):
        raise ValueError(
            "flash_attention_swift: every local sequence length must be even for layout 'zigzag' (two equal chunks "
            f"per rank: global lengths that are multiples of 2 x world size), got cu_seqlens {values}"
        )


__all__ = [
    "LAYOUTS",
    "local_cu_seqlens",
    "ring_flash_attn_func",
    "ring_flash_attn_varlen_func",
    "shard",
    "shard_varlen",
    "simulated_ring_flash_attn_func",
    "simulated_ring_flash_attn_varlen_func",
    "unshard",
    "unshard_varlen",
]
