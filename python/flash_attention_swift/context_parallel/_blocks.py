"""One ring step's computation on one rank, shared by the distributed ring (_distributed) and the
one-process simulated ring (_simulated): the library's forward on a (queries, K/V block) pair
merged exactly into the running result by the LSEs, and the library's backward on the same pair
with the final output and LSE, its gradients added into dQ, dK and dV.

The backward is exact with the global (final) output and LSE: P = exp(S - LSE) is then the
global softmax restricted to the block, and D = rowsum(dO * O) the global one, so each block's
dS = P (dP - D) is the block's part of the whole sequence's gradient.

Rows are addressed through a geometry: `FixedRows` for (batch, seqlen, heads, dim) tensors, whose
zigzag halves are views (narrow), and `VarlenRows` for packed (total, heads, dim) tensors whose
sequences each hold their two zigzag chunks, so a half is a gather over every sequence.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import _calls, _varlen_calls
from ._layout import ALL, BACK, FRONT, Block

_FLOAT32 = torch.float32
_FLOAT64 = torch.float64

class FixedRows:
    """Rows of (batch, seqlen, heads, dim) tensors; the LSE is the library's (batch, heads, seqlen)."""

    seq_dim = 1
    lse_dim = 2
    parts_are_views = True

    def __init__(self, seqlen: int) -> None:
        self.half = seqlen // 2

    def take(self, tensor: torch.Tensor, part: str, dim: int) -> torch.Tensor:
        if part == ALL:
            return tensor
        start = 0 if part == FRONT else self.half
        return tensor.narrow(dim, start, self.half)

    def put(self, target: torch.Tensor, part: str, dim: int, values: torch.Tensor) -> None:
        self.take(target, part, dim).copy_(values)

    def add(self, target: torch.Tensor, part: str, dim: int, values: torch.Tensor) -> None:
        self.take(target, part, dim).add_(values)

    @staticmethod
    def lse_rows(lse: torch.Tensor) -> torch.Tensor:
        """(batch, heads, seqlen) -> (batch, seqlen, heads), out's rows (a view)."""
        return lse.transpose(1, 2)

    @staticmethod
    def lse_library(lse_rows: torch.Tensor) -> torch.Tensor:
        return lse_rows.transpose(1, 2).contiguous()

    def forward(self, q, k, v, block: Block, scale: float):
        return _calls.forward(q, k, v, scale, block.causal, -1, -1, 0.0)

    def backward(self, dout, q, k, v, out, lse, block: Block, scale: float, deterministic: bool):
        return _calls.backward(dout, q, k, v, out, lse, scale, block.causal, -1, -1, 0.0, deterministic)


class VarlenRows:
    """Rows of packed (total, heads, dim) tensors holding several sequences (cu_seqlens, int32 on
    the tensors' device); the LSE is the library's (heads, total). For zigzag every local
    sequence holds two equal chunks, so its front and back halves are sequences of half length
    (cu_seqlens // 2), gathered with index tensors."""

    seq_dim = 0
    lse_dim = 1
    parts_are_views = False

    def __init__(self, cu_seqlens: torch.Tensor, max_seqlen: int, total: int, zigzag: bool) -> None:
        self.cu_seqlens = cu_seqlens
        self.max_seqlen = max_seqlen
        self.indexes = {}
        if not zigzag:
            return
        self.half_cu_seqlens = torch.div(cu_seqlens, 2, rounding_mode="floor")
        self.half_max_seqlen = max_seqlen // 2
        starts = cu_seqlens[:-1].long()
        lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
        positions = torch.arange(total, device=cu_seqlens.device)
        sequence = torch.searchsorted(cu_seqlens[1:].long(), positions, right=True)
        front = positions - starts[sequence] < lengths[sequence] // 2
        self.indexes = {FRONT: front.nonzero().flatten(), BACK: (~front).nonzero().flatten()}

    def take(self, tensor: torch.Tensor, part: str, dim: int) -> torch.Tensor:
        return tensor if part == ALL else tensor.index_select(dim, self.indexes[part])

    def put(self, target: torch.Tensor, part: str, dim: int, values: torch.Tensor) -> None:
        if part == ALL:
            target.copy_(values)
        else:
            target.index_copy_(dim, self.indexes[part], values.to(target.dtype))

    def add(self, target: torch.Tensor, part: str, dim: int, values: torch.Tensor) -> None:
        if part == ALL:
            target.add_(values)
        else:
            target.index_add_(dim, self.indexes[part], values.to(target.dtype))

    @staticmethod
    def lse_rows(lse: torch.Tensor) -> torch.Tensor:
        """(heads, total) -> (total, heads), out's rows (a view)."""
        return lse.t()

    @staticmethod
    def lse_library(lse_rows: torch.Tensor) -> torch.Tensor:
        return lse_rows.t().contiguous()

    def _sequences(self, part: str):
        if part == ALL:
            return self.cu_seqlens, self.max_seqlen
        return self.half_cu_seqlens, self.half_max_seqlen

    def forward(self, q, k, v, block: Block, scale: float):
        cu_q, max_q = self._sequences(block.queries)
        cu_k, max_k = self._sequences(block.keys)
        return _varlen_calls.varlen_forward(
            q, k, v, cu_q, cu_k, None, None, max_q, max_k, scale, block.causal, -1, -1, 0.0
        )

    def backward(self, dout, q, k, v, out, lse, block: Block, scale: float, deterministic: bool):
        cu_q, max_q = self._sequences(block.queries)
        cu_k, max_k = self._sequences(block.keys)
        return _varlen_calls.varlen_backward(
            dout, q, k, v, out, lse, cu_q, cu_k, None, None, max_q, max_k,
            scale, block.causal, -1, -1, 0.0, deterministic,
        )


class Accumulator:
    """A rank's running output (float32) and LSE (float64), both in out's row layout, merged block
    by block.

    The merge is flash_attn_combine's (out = sum_i exp(lse_i - lse) out_i) for two parts, done in
    place as out += w (out_block - out) with w = exp(lse_block - lse_new) (formed as
    sigmoid(lse_block - lse_current), see merge): combine would stack copies of both partial
    outputs, about four times the memory traffic, which for small blocks costs as much as their
    attention."""

    def __init__(self) -> None:
        self.out: Optional[torch.Tensor] = None
        self.lse: Optional[torch.Tensor] = None

    def merge(self, geometry, part: str, out: torch.Tensor, lse: torch.Tensor) -> None:
        """Merges one block's (out, library LSE) into the rows `part`."""
        lse_rows = geometry.lse_rows(lse)
        if self.out is None:
            if part == ALL:
                self.out, self.lse = out.to(_FLOAT32), lse_rows.to(_FLOAT64).contiguous()
                return
            # Rows outside `part` have seen no key yet: out 0, LSE -inf.
            self.out = out.new_zeros(_full_shape(geometry, part, out), dtype=_FLOAT32)
            self.lse = torch.full(self.out.shape[:-1], float("-inf"), dtype=_FLOAT64, device=out.device)
        dim = geometry.seq_dim
        current_out = geometry.take(self.out, part, dim)  # a view for fixed rows, a copy for varlen halves
        current_lse = geometry.take(self.lse, part, dim)
        lse_rows = lse_rows.to(_FLOAT64)
        merged_lse = torch.logaddexp(current_lse, lse_rows)  # -inf where neither saw a key
        # The block's share e^(lse_block - merged) as sigmoid(lse_block - lse_current): the same
        # number, without the merged LSE's rounding. The running LSE is float64 for the same
        # reason: a float32 one carries half a unit in its last place (4e-6 at |LSE| = 64) into
        # the weights, a scale on the output that in a near-one-hot row outweighs the other
        # blocks' whole share, and the backward's D inherits it. 0 where the block saw no key,
        # and where neither did (-inf - -inf is NaN).
        weight = torch.sigmoid(lse_rows - current_lse).to(_FLOAT32).nan_to_num_(nan=0.0).unsqueeze(-1)
        current_out.lerp_(out.to(_FLOAT32), weight)
        geometry.put(self.lse, part, dim, merged_lse)
        if part != ALL and not geometry.parts_are_views:
            geometry.put(self.out, part, dim, current_out)

    def result(self, geometry, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(out in `dtype`, LSE in the library's layout, float32)."""
        return self.out.to(dtype), geometry.lse_library(self.lse.to(_FLOAT32))


def _full_shape(geometry, part: str, out: torch.Tensor) -> tuple:
    shape = list(out.shape)
    shape[geometry.seq_dim] *= 2  # a part is a zigzag half
    return tuple(shape)


def forward_block(geometry, q, k, v, block: Block, scale: float, accumulator: Accumulator) -> None:
    """This rank's queries (block.queries) against the K/V block's keys (block.keys), merged."""
    dim = geometry.seq_dim
    out, lse = geometry.forward(
        geometry.take(q, block.queries, dim), geometry.take(k, block.keys, dim), geometry.take(v, block.keys, dim),
        block, scale,
    )
    accumulator.merge(geometry, block.queries, out, lse)


def backward_block(
    geometry, dout, q, k, v, out, lse, block: Block, scale: float, deterministic: bool, dq, dk, dv
) -> None:
    """Adds this block's share of the gradients into dq (this rank's rows) and dk, dv (the K/V
    block's rows), all float32. out and lse are the final ones (the library's LSE layout)."""
    dim = geometry.seq_dim
    queries, keys = block.queries, block.keys
    gradients = geometry.backward(
        geometry.take(dout, queries, dim), geometry.take(q, queries, dim),
        geometry.take(k, keys, dim), geometry.take(v, keys, dim),
        geometry.take(out, queries, dim), geometry.take(lse, queries, geometry.lse_dim),
        block, scale, deterministic,
    )
    geometry.add(dq, queries, dim, gradients[0])
    geometry.add(dk, keys, dim, gradients[1])
    geometry.add(dv, keys, dim, gradients[2])


def default_scale(softmax_scale, q: torch.Tensor) -> float:
    if softmax_scale is not None:
        return float(softmax_scale)
    head_dim = q.shape[-1]
    return head_dim ** -0.5 if head_dim > 0 else 1.0
