"""Ring attention across processes: 2 and 4 ranks on the CPU with the gloo backend
(torch.multiprocessing.spawn), every case of context_parallel_cases (both layouts, causal and
not, GQA, odd chunk lengths, fixed-length and varlen, fp32 and bf16): outputs, LSE and q/k/v
gradients gathered and compared with the float64 attention over the whole sequence; with 4
ranks also two rings of two in interleaved subgroups. On GPU machines (`pytest -k cuda`) the same
worker runs with NCCL: one rank on one GPU, and 2, 4, 8 ranks where as many GPUs are usable
(fixed-length bf16 cases: the CUDA backend has no varlen kernels yet)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import context_parallel_worker
from conftest import CUDA_USABLE, SEED, needs_cuda

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


@needs_cuda
def test_ring_cuda_one_rank_nccl_matches_whole_sequence_attention():
    """The distributed code path on CUDA tensors with one NCCL rank (its ring exchange is a
    local copy): what one GPU can check of it; several GPUs run the same worker with more ranks."""
    mp.spawn(
        context_parallel_worker.worker,
        args=(1, _free_port(), SEED, (torch.bfloat16,), False, "nccl", "cuda"),
        nprocs=1,
        join=True,
    )


@pytest.mark.parametrize("world", [2, 4, 8])
def test_ring_cuda_over_nccl_matches_whole_sequence_attention(world):
    """Every GPU a rank, NCCL: runs where as many GPUs are usable."""
    if not CUDA_USABLE or torch.cuda.device_count() < world or not dist.is_nccl_available():
        pytest.skip(f"needs {world} CUDA devices and NCCL")
    mp.spawn(
        context_parallel_worker.worker,
        args=(world, _free_port(), SEED + world, (torch.bfloat16,), world == 4, "nccl", "cuda"),
        nprocs=world,
        join=True,
    )
