"""The ring's schedule, seen through a recording stand-in for the communication: at every step
the next K/V block's exchange is issued before the current block is computed and waited for
after it (so the transfer overlaps the attention), blocks wholly in the future are skipped, the
backward's dK/dV of a block leave right after its gradients are added (the previous rank's
awaited just before), and a last exchange brings this rank's own block's gradients home."""

from __future__ import annotations

import pytest
import torch

from flash_attention_swift.context_parallel import _blocks, _distributed


class RecordingRing:
    """One rank of a ring of `world_size`: an exchange logs when it is issued and waited for and
    returns zeros of the sent shapes."""

    def __init__(self, rank: int, world_size: int, log: list) -> None:
        self.rank, self.world_size, self.log = rank, world_size, log

    def exchange(self, tensors):
        log = self.log
        log.append("issue")

        class Pending:
            def wait(self):
                log.append("wait")
                return [torch.zeros_like(t) for t in tensors]

        return Pending()


def _record(monkeypatch, log: list, blocks: list) -> None:
    """Block computations replaced by log entries (the forward's merge gets zeros)."""

    def forward_block(geometry, q, k, v, block, scale, accumulator):
        log.append("forward")
        blocks.append(block)
        accumulator.merge(geometry, "all", torch.zeros(q.shape), torch.zeros(q.shape[0], q.shape[2], q.shape[1]))

    def backward_block(geometry, dout, q, k, v, out, lse, block, *rest):
        log.append("backward")
        blocks.append(block)

    monkeypatch.setattr(_blocks, "forward_block", forward_block)
    monkeypatch.setattr(_blocks, "backward_block", backward_block)


@pytest.mark.parametrize("layout", ["zigzag", "contiguous"])
def test_forward_issues_the_next_block_before_computing_this_one(monkeypatch, layout):
    log, blocks = [], []
    _record(monkeypatch, log, blocks)
    world, rank = 4, 1
    q, k, v = (torch.zeros(1, 8, 2, 16) for _ in range(3))
    out, lse = _distributed.ring_forward(RecordingRing(rank, world, log), _blocks.FixedRows(8), q, k, v, 0.25, True, layout)
    assert out.shape == q.shape and lse.shape == (1, 2, 8)
    if layout == "zigzag":  # every step has work: the diagonal, rank 0's front half, ranks 3's and 2's with the back queries
        assert log == ["issue", "forward", "wait"] * 3 + ["forward"]
        assert [(b.queries, b.keys, b.causal) for b in blocks] == [
            ("all", "all", True), ("all", "front", False), ("back", "all", False), ("back", "all", False)
        ]
    else:  # rank 1 computes its own block and rank 0's; ranks 3's and 2's are wholly in the future
        assert log == ["issue", "forward", "wait", "issue", "forward", "wait", "issue", "wait"]
        assert [b.causal for b in blocks] == [True, False]


def test_backward_overlaps_and_sends_gradients_home(monkeypatch):
    log, blocks = [], []
    _record(monkeypatch, log, blocks)
    world, rank = 3, 2
    q, k, v, out, dout = (torch.zeros(1, 6, 2, 16) for _ in range(5))
    lse = torch.zeros(1, 2, 6)
    dq, dk, dv = _distributed.ring_backward(
        RecordingRing(rank, world, log), _blocks.FixedRows(6), dout, q, k, v, out, lse, 0.25, True, "zigzag", False
    )
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    assert log == (
        ["issue", "backward", "wait", "issue"]  # step 0: next K/V out, compute, K/V in, this block's dK/dV out
        + ["issue", "backward", "wait", "wait", "issue"]  # step 1: the same, the previous rank's dK/dV awaited first
        + ["backward", "wait", "issue"]  # step 2 (the last): no K/V left to fetch
        + ["wait"]  # this rank's own block's dK/dV, home after visiting every rank
    )
    assert len(blocks) == world
