"""Cases for the context-parallel tests, shared by the in-process (simulated ring) tests and the
spawned gloo workers: the whole sequence's inputs from a seed (the same on every rank), its
float64 and same-precision attention with gradients, and the check of the ranks' shards put back
together (FlashAttention's rule, reference.py)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from flash_attention_swift.context_parallel import shard, shard_varlen, unshard, unshard_varlen

import reference


@dataclass(frozen=True)
class Case:
    layout: str
    causal: bool
    dtype: torch.dtype
    chunk: int  # tokens per chunk (the sequence has W or 2W chunks)
    heads_q: int = 4
    heads_kv: int = 2
    head_dim: int = 32
    batch: int = 2
    varlen_chunks: tuple | None = None  # varlen: each sequence's chunk count multiple (length = n x chunks x W)

    def seqlen(self, world: int) -> int:
        return self.chunk * (2 * world if self.layout == "zigzag" else world)

    def lengths(self, world: int) -> list[int]:
        per = 2 * world if self.layout == "zigzag" else world
        return [n * per for n in self.varlen_chunks]

    def id(self) -> str:
        kind = f"varlen{'-'.join(map(str, self.varlen_chunks))}" if self.varlen_chunks else f"chunk{self.chunk}"
        dtype = str(self.dtype).replace("torch.", "")
        return f"{self.layout}-{'causal' if self.causal else 'full'}-{dtype}-{kind}-h{self.heads_q}/{self.heads_kv}-d{self.head_dim}"


def cases(dtypes=(torch.float32, torch.bfloat16)) -> list[Case]:
    """Both layouts, causal and not, GQA and MHA, odd chunk lengths; fixed-length and varlen.
    One-token chunks in fp32 only: with a handful of elements the bf16 rule's max error is noise
    (flash_attn_func itself misses it for 1 in 5 seeds at 1 x 2 x 2 x 16)."""
    result = []
    for layout, causal, dtype in itertools.product(("zigzag", "contiguous"), (True, False), dtypes):
        result.append(Case(layout, causal, dtype, chunk=7, heads_q=4, heads_kv=2, head_dim=32))
        if dtype == torch.float32:
            result.append(Case(layout, causal, dtype, chunk=1, heads_q=2, heads_kv=2, head_dim=16, batch=1))
        result.append(Case(layout, causal, dtype, chunk=0, heads_q=4, heads_kv=1, head_dim=64, varlen_chunks=(3, 0, 1, 5)))
    return result


def whole_inputs(case: Case, world: int, seed: int, device="cpu"):
    """q, k, v of the whole sequence (fixed: (batch, seqlen, ...); varlen: (total, ...)) and dout,
    in case.dtype, plus the global cu_seqlens (varlen) or None."""
    generator = torch.Generator().manual_seed(seed)
    if case.varlen_chunks:
        total = sum(case.lengths(world))
        leading = (total,)
        cu = list(itertools.accumulate(case.lengths(world), initial=0))
    else:
        leading = (case.batch, case.seqlen(world))
        cu = None
    shapes = [(case.heads_q, case.head_dim), (case.heads_kv, case.head_dim), (case.heads_kv, case.head_dim), (case.heads_q, case.head_dim)]
    q, k, v, dout = (torch.randn(*leading, *shape, generator=generator).to(device, case.dtype) for shape in shapes)
    return q, k, v, dout, cu


def _attention(case: Case, q, k, v, cu, compute_dtype):
    if cu is None:
        return reference.attention(q, k, v, causal=case.causal, compute_dtype=compute_dtype)
    return reference.varlen_attention(q, k, v, cu, cu, causal=case.causal, compute_dtype=compute_dtype)


def expected(case: Case, q, k, v, dout, cu):
    """float64 (out, lse, dq, dk, dv) and the same-precision (out, dq, dk, dv) (None for fp32)."""
    inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    out, lse = _attention(case, *inputs, cu, torch.float64)
    exact = (out, lse, *torch.autograd.grad(out, inputs, dout.double()))
    if case.dtype == torch.float32:
        return exact, [None] * 4
    inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out_same, _ = _attention(case, *inputs, cu, case.dtype)
    return exact, [out_same, *torch.autograd.grad(out_same, inputs, dout)]


def shards(case: Case, tensor, rank: int, world: int, cu):
    if cu is None:
        return shard(tensor, rank, world, case.layout, dim=1)
    return shard_varlen(tensor, cu, rank, world, case.layout)[0]


def whole(case: Case, pieces, cu, lse: bool = False):
    """The whole sequence from the ranks' pieces (out/gradients, or LSEs with lse=True)."""
    if cu is None:
        return unshard(pieces, case.layout, dim=2 if lse else 1)
    if lse:
        return unshard_varlen([p.t() for p in pieces], cu, case.layout).t()
    return unshard_varlen(pieces, cu, case.layout)


def check(case: Case, world: int, out, lse, dq, dk, dv, exact, same) -> None:
    """The whole sequence's results against the float64 attention: fp32 within 1e-4 (reference's
    rule); bf16 within 2x a bf16 standard attention's error plus (world - 1) bf16 roundings at the
    result's magnitude, because the library returns each block's partial output and gradients in
    the storage dtype, so W blocks merged carry up to W - 1 more roundings than one call."""
    out64, lse64, dq64, dk64, dv64 = exact
    try:
        reference.check_lse(lse, lse64)
        for name, actual, wanted, same_precision in zip(
            ("out", "dq", "dk", "dv"), (out, dq, dk, dv), (out64, dq64, dk64, dv64), same
        ):
            if same_precision is None:
                reference.check(name, actual, wanted, None)
                continue
            assert torch.isfinite(actual).all(), f"{name}: not finite"
            if not actual.numel():
                continue
            same_error = reference._max_error(same_precision, wanted)
            blocks = (world - 1) * 2.0**-8 * wanted.abs().max().item()
            allowed = 2 * same_error + reference.epsilon(wanted) + blocks
            error = reference._max_error(actual, wanted)
            assert error <= allowed, (
                f"{name}: max error {error:.3g} > {allowed:.3g} (2x the same-precision reference's {same_error:.3g} "
                f"+ {world - 1} bf16 roundings {blocks:.3g} + epsilon)"
            )
    except AssertionError as error:
        raise AssertionError(f"{case.id()} over {world} ranks: {error}") from None
