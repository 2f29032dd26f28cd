"""Ring attention across processes: 2 and 4 ranks on the CPU with the gloo backend
(torch.multiprocessing.spawn), every case of context_parallel_cases (both layouts, causal and
not, GQA, odd chunk lengths, fixed-length and varlen, fp32 and bf16): outputs, LSE and q/k/v
gradients gathered and compared with the float64 attention over the whole sequence; with 4
ranks also two rings of two in interleaved subgroups."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import context_parallel_worker
from conftest import SEED

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is not available"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("world", [2, 4])
def test_ring_over_gloo_matches_whole_sequence_attention(world, monkeypatch):
    # One library thread per rank: the ranks share this machine's cores. One spawn per world
    # size runs every case (starting the processes costs more than the cases).
    monkeypatch.setenv("FLASH_ATTENTION_CPU_THREADS", "1")
    mp.spawn(
        context_parallel_worker.worker,
        args=(world, _free_port(), SEED + world, (torch.float32, torch.bfloat16), world == 4),
        nprocs=world,
        join=True,
    )
