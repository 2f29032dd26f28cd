"""Shared by context_parallel.py (the simulated ring on one device) and
context_parallel_scaling.py (the ring over NCCL with torchrun): the float64 reference and its
pass rule for a small correctness check, inputs, and timing."""

from __future__ import annotations

import statistics
import time

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def inputs(batch, seqlen, heads, heads_kv, head_dim, dtype, device, seed):
    """q, k, v, dout of the whole sequence (batch, seqlen, heads, dim), generated on `device` from
    `seed`: the same values on every rank (devices of one kind), without a host copy of a
    million-token sequence."""
    generator = torch.Generator(device=device).manual_seed(seed)
    shapes = ((heads, head_dim), (heads_kv, head_dim), (heads_kv, head_dim), (heads, head_dim))
    return [torch.randn(batch, seqlen, *shape, generator=generator, device=device).to(dtype) for shape in shapes]


def standard_attention(q, k, v, causal: bool, dtype):
    """Standard attention (the matrices stored) in `dtype`, differentiable."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * q.shape[-1] ** -0.5
    if causal:
        mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, dim=-1).to(dtype), v)


def reference_results(q, k, v, dout, causal: bool):
    """float64 (out, dq, dk, dv) and same-precision ones (None for fp32)."""
    results = []
    for dtype in (torch.float64, q.dtype):
        if dtype == torch.float32:
            results.append(None)
            continue
        leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        out = standard_attention(*leaves, causal, dtype)
        results.append([out, *torch.autograd.grad(out, leaves, dout.to(dtype))])
    return results


def check(actual, exact, same, world: int) -> dict:
    """FlashAttention's rule for each of out, dq, dk, dv (fp32: L2 1e-4 relative; 16-bit: 2x the
    same-precision error plus (world - 1) roundings of the storage dtype at the result's
    magnitude, one per extra block merged). Returns {name: {error, allowed, ok}}."""
    report = {}
    for name, a, e, s in zip(("out", "dq", "dk", "dv"), actual, exact, same or [None] * 4):
        a, e = a.double(), e.double()
        if s is None:
            error = ((a - e).norm() / e.norm()).item()
            allowed = 1e-4
        else:
            unit = torch.finfo(s.dtype).eps / 2  # unit roundoff: 2^-8 for bf16
            error = (a - e).abs().max().item()
            allowed = 2 * (s.double() - e).abs().max().item() + 1e-6 + (world - 1) * unit * e.abs().max().item()
        ok = bool(torch.isfinite(a).all()) and error <= allowed
        report[name] = {"error": error, "allowed": allowed, "ok": ok}
    return report


class Timer:
    """Elapsed seconds of a callable: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, function) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            function()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        started = time.perf_counter()
        function()
        return time.perf_counter() - started


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def attention_flops(batch, seqlen, heads, head_dim, causal: bool, backward: bool) -> float:
    """PERFORMANCE.md's count: forward 4·b·h·s²·d (halved causal), backward 2.5x forward."""
    forward = 4 * batch * heads * seqlen * seqlen * head_dim * (0.5 if causal else 1.0)
    return forward * (3.5 if backward else 1.0)
