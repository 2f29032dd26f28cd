"""The body of one rank in the distributed tests (test_context_parallel_distributed: gloo on
the CPU, NCCL on GPUs): every case's shards
through ring_flash_attn_func / ring_flash_attn_varlen_func and backward, the results gathered
and checked against the float64 attention over the whole sequence on rank 0. A module of its
own so that torch.multiprocessing.spawn's children import it by name."""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from flash_attention_swift import _calls
from flash_attention_swift.context_parallel import ring_flash_attn_func, ring_flash_attn_varlen_func, shard_varlen

import context_parallel_cases as cp


def _gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
    pieces = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(pieces, tensor.contiguous(), group=group)
    return pieces


def run_case(case: cp.Case, seed: int, group=None, device="cpu") -> None:
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    q, k, v, dout, cu = cp.whole_inputs(case, world, seed, device)
    local = [cp.shards(case, t, rank, world, cu) for t in (q, k, v, dout)]
    local_q, local_k, local_v = (t.clone().requires_grad_() for t in local[:3])
    if cu is None:
        out, lse = ring_flash_attn_func(
            local_q, local_k, local_v, causal=case.causal, group=group, layout=case.layout, return_attn_probs=True
        )
    else:
        _, local_cu, local_max = shard_varlen(q, cu, rank, world, case.layout)
        out, lse = ring_flash_attn_varlen_func(
            local_q, local_k, local_v, local_cu, local_max, causal=case.causal, group=group, layout=case.layout,
            return_attn_probs=True,
        )
    assert out.shape == local_q.shape[:-1] + local_v.shape[-1:] and out.dtype == case.dtype
    assert not lse.requires_grad
    dq, dk, dv = torch.autograd.grad(out, (local_q, local_k, local_v), local[3])
    gathered = [_gather(t, group) for t in (out, lse, dq, dk, dv)]
    if rank == 0:
        whole = [cp.whole(case, [p.cpu() for p in pieces], cu, lse=index == 1) for index, pieces in enumerate(gathered)]
        exact, same = cp.expected(case, *(t.cpu() for t in (q, k, v, dout)), cu)
        cp.check(case, world, *whole, exact, same)


def worker(
    rank: int, world: int, port: int, seed: int, dtypes: tuple, subgroups: bool, backend: str = "gloo", device: str = "cpu"
) -> None:
    if device == "cuda":
        torch.cuda.set_device(rank)
        device = f"cuda:{rank}"
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    _calls.poison_outputs = True  # an element the library leaves unwritten fails as NaN
    try:
        for index, case in enumerate(cp.cases(dtypes)):
            if device != "cpu" and case.varlen_chunks:
                continue  # the CUDA backend has no varlen kernels yet
            run_case(case, seed + index, device=device)
        if subgroups:
            # Two rings of two in one world of four, over interleaved ranks: the ring's
            # neighbours are group ranks mapped to global ones.
            groups = [dist.new_group([0, 2]), dist.new_group([1, 3])]
            mine = groups[rank % 2]
            for index, case in enumerate(c for c in cp.cases(dtypes) if not c.varlen_chunks):
                if index == 4:
                    break
                run_case(case, seed + 1000 + index + rank % 2, group=mine, device=device)
        dist.barrier()
    finally:
        dist.destroy_process_group()
