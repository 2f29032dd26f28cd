"""Cutting a whole sequence into the ranks' shards and putting shards back together, for both
layouts: fixed-length tensors along their sequence dimension, and packed variable-length batches
sequence by sequence (each sequence cut into the layout's chunks, so every rank holds part of
every sequence and the local cu_seqlens are the global ones divided by the chunks per rank)."""

from __future__ import annotations

from typing import Sequence

import torch

from . import _layout


def shard(tensor: torch.Tensor, rank: int, world_size: int, layout: str = "zigzag", dim: int = 1) -> torch.Tensor:
    """Rank `rank`'s shard of `tensor` (the whole sequence along `dim`), contiguous."""
    _layout.check_layout(layout)
    _check_rank(rank, world_size)
    chunk = _layout.check_divisible(tensor.shape[dim], layout, world_size, f"the sequence length (dim {dim})")
    chunks = [tensor.narrow(dim, index * chunk, chunk) for index in _layout.chunk_indices(layout, rank, world_size)]
    return torch.cat(chunks, dim=dim).contiguous()


def unshard(shards: Sequence[torch.Tensor], layout: str = "zigzag", dim: int = 1) -> torch.Tensor:
    """The whole sequence from every rank's shard (in rank order): the inverse of `shard`."""
    _layout.check_layout(layout)
    world_size = len(shards)
    pieces = {}
    for rank, local in enumerate(shards):
        indices = _layout.chunk_indices(layout, rank, world_size)
        for index, piece in zip(indices, local.chunk(len(indices), dim=dim)):
            pieces[index] = piece
    return torch.cat([pieces[index] for index in sorted(pieces)], dim=dim)


def shard_varlen(
    tensor: torch.Tensor, cu_seqlens, rank: int, world_size: int, layout: str = "zigzag"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rank `rank`'s shard of a packed batch (total, ...) with global `cu_seqlens`: (local packed
    tensor, local cu_seqlens int32 on the tensor's device, local max_seqlen). Every sequence's
    length must be a multiple of the layout's chunk count (world_size, or 2 x world_size)."""
    _layout.check_layout(layout)
    _check_rank(rank, world_size)
    bounds = _bounds(cu_seqlens)
    pieces = [
        shard(tensor[start:end], rank, world_size, layout, dim=0) if end > start else tensor[start:end]
        for start, end in _checked(bounds, layout, world_size)
    ]
    local = torch.cat(pieces, dim=0) if pieces else tensor[:0]
    return local, local_cu_seqlens(cu_seqlens, world_size, tensor.device), max_local(bounds, world_size)


def unshard_varlen(shards: Sequence[torch.Tensor], cu_seqlens, layout: str = "zigzag") -> torch.Tensor:
    """The packed batch from every rank's shard: the inverse of `shard_varlen`."""
    world_size = len(shards)
    bounds = _bounds(cu_seqlens)
    local_bounds = [(start // world_size, end // world_size) for start, end in bounds]
    sequences = [unshard([s[start:end] for s in shards], layout, dim=0) for start, end in local_bounds]
    return torch.cat(sequences, dim=0) if sequences else shards[0][:0]


def local_cu_seqlens(cu_seqlens, world_size: int, device) -> torch.Tensor:
    """Every rank's cu_seqlens: each sequence contributes 1 / world_size of its tokens."""
    values = [int(x) // world_size for x in _as_list(cu_seqlens)]
    return torch.tensor(values, dtype=torch.int32, device=device)


def max_local(bounds, world_size: int) -> int:
    return max((end - start for start, end in bounds), default=0) // world_size


def _bounds(cu_seqlens) -> list[tuple[int, int]]:
    values = _as_list(cu_seqlens)
    return list(zip(values[:-1], values[1:]))


def _checked(bounds, layout: str, world_size: int):
    for index, (start, end) in enumerate(bounds):
        _layout.check_divisible(end - start, layout, world_size, f"sequence {index}'s length")
    return bounds


def _as_list(cu_seqlens) -> list[int]:
    return [int(x) for x in (cu_seqlens.tolist() if isinstance(cu_seqlens, torch.Tensor) else cu_seqlens)]


def _check_rank(rank: int, world_size: int) -> None:
    if not 0 <= rank < world_size:
        raise ValueError(f"flash_attention_swift: rank {rank} is not in [0, {world_size})")
