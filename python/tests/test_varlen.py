"""flash_attn_varlen_func: forward (out, LSE) and backward (dq, dk, dv) of packed batches against
a float64 attention computed sequence by sequence, with FlashAttention's pass rule
(reference.py): lengths 0, 1 and odd ones, seqused, causal / windows / softcap per sequence,
GQA, d != d_v, strided inputs, outputs poisoned with NaN. The CPU grid runs here; the CUDA grid
with `pytest -k cuda` on a GPU machine."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import torch

from flash_attention_swift import flash_attn_func, flash_attn_varlen_func

import reference
from conftest import needs_cuda


@dataclass(frozen=True)
class Lengths:
    """One packed batch: per-sequence lengths, optional used counts, extra trailing q rows."""

    name: str
    q: tuple
    k: tuple
    used_q: tuple | None = None
    used_k: tuple | None = None
    trailing_q: int = 0

    def cu(self, lengths) -> list[int]:
        return list(itertools.accumulate(lengths, initial=0))


# Self-attention packs (q and k lengths equal) and cross ones, with empty sequences, single
# tokens, sequences whose queries see no key, and seqused.
LENGTH_SETS = {
    "self": Lengths("self", (1, 0, 7, 17, 129), (1, 0, 7, 17, 129)),
    "cross": Lengths("cross", (5, 0, 33, 1, 16), (17, 3, 0, 40, 9)),
    "seqused": Lengths("seqused", (9, 20, 4, 6), (12, 31, 6, 6), used_q=(9, 7, 0, 6), used_k=(5, 31, 2, 0)),
    "trailing": Lengths("trailing", (3, 8), (8, 3), trailing_q=5),
}
CUDA_LENGTH_SETS = {
    **LENGTH_SETS,
    "mixed": Lengths("mixed", (1000, 1, 129, 257, 0, 64), (1000, 1, 129, 257, 0, 64)),
    "long_cross": Lengths("long_cross", (77, 513, 128), (1031, 200, 128), used_q=(77, 500, 100), used_k=(1031, 1, 128)),
}


@dataclass(frozen=True)
class Case:
    dtype: torch.dtype
    lengths: Lengths
    heads_q: int = 4
    heads_kv: int = 2
    head_dim: int = 64
    head_dim_v: int = 64
    mask: str = "none"
    softcap: float = 0.0
    layout: str = "contiguous"
    deterministic: bool = False

    @property
    def causal(self) -> bool:
        return self.mask in ("causal", "causal_window")

    @property
    def window(self) -> tuple[int, int]:
        return {"window": (5, 3), "causal_window": (16, -1)}.get(self.mask, (-1, -1))

    def id(self, device: str) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (
            f"{device}-{dtype}-{self.lengths.name}-h{self.heads_q}x{self.heads_kv}-d{self.head_dim}x{self.head_dim_v}"
            f"-{self.mask}-cap{self.softcap:g}-{self.layout}" + ("-det" if self.deterministic else "")
        )


MASKS = ("none", "causal", "window", "causal_window")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HALF_DTYPES = (torch.float16, torch.bfloat16)


def cpu_cases() -> list[Case]:
    cases = [Case(dtype, lengths, mask=mask) for dtype, lengths, mask in itertools.product(DTYPES, LENGTH_SETS.values(), MASKS)]
    for dtype, (hq, hkv), (d, dv), softcap in itertools.product(
        (torch.float32, torch.bfloat16), ((6, 3), (3, 1)), ((64, 64), (40, 72)), (0.0, 15.0)
    ):
        cases.append(Case(dtype, LENGTH_SETS["cross"], hq, hkv, d, dv, "causal", softcap))
    for layout in ("packed_qkv", "heads_first"):
        cases.append(Case(torch.float32, LENGTH_SETS["self"], 4, 4, 64, 64, "causal", layout=layout))
    cases.append(Case(torch.bfloat16, LENGTH_SETS["self"], mask="causal", deterministic=True))
    return cases


def cuda_cases() -> list[Case]:
    cases = []
    for dtype, lengths, mask, softcap, (hq, hkv), (d, dv) in itertools.product(
        HALF_DTYPES, CUDA_LENGTH_SETS.values(), MASKS, (0.0, 30.0), ((8, 8), (8, 2)),
        ((64, 64), (128, 128), (256, 256), (192, 128)),
    ):
        cases.append(Case(dtype, lengths, hq, hkv, d, dv, mask, softcap))
    for dtype, layout in itertools.product(HALF_DTYPES, ("packed_qkv", "heads_first")):
        cases.append(Case(dtype, CUDA_LENGTH_SETS["mixed"], 8, 8, 128, 128, "causal", layout=layout))
    for dtype in HALF_DTYPES:
        cases.append(Case(dtype, CUDA_LENGTH_SETS["mixed"], 8, 2, 128, 128, "causal", deterministic=True))
    return cases


def _params():
    params = [pytest.param("cpu", case, id=case.id("cpu")) for case in cpu_cases()]
    params += [pytest.param("cuda", case, id=case.id("cuda"), marks=needs_cuda) for case in cuda_cases()]
    return params


def packed_inputs(case: Case, device: str):
    """q, k, v (total, heads, dim) with fresh random values, and the index tensors."""
    lengths = case.lengths
    total_q = sum(lengths.q) + lengths.trailing_q
    total_k = sum(lengths.k)
    shapes = ((total_q, case.heads_q, case.head_dim), (total_k, case.heads_kv, case.head_dim), (total_k, case.heads_kv, case.head_dim_v))
    q, k, v = (torch.randn(shape, device=device).to(case.dtype) for shape in shapes)
    indexes = [
        torch.tensor(lengths.cu(lengths.q), dtype=torch.int32, device=device),
        torch.tensor(lengths.cu(lengths.k), dtype=torch.int32, device=device),
        None if lengths.used_q is None else torch.tensor(lengths.used_q, dtype=torch.int32, device=device),
        None if lengths.used_k is None else torch.tensor(lengths.used_k, dtype=torch.int32, device=device),
    ]
    return (q, k, v), indexes


def arrange(tensors, layout: str):
    """The same values in another memory layout with a unit last stride: q, k, v as views of one
    packed (total, 3, heads, dim) buffer, or of (heads, total, dim) buffers."""
    if layout == "contiguous":
        return [t.clone() for t in tensors]
    if layout == "packed_qkv":
        assert len({t.shape for t in tensors}) == 1, "packed_qkv needs equal shapes"
        return list(torch.stack(tensors, dim=1).unbind(1))
    if layout == "heads_first":
        return [t.transpose(0, 1).contiguous().transpose(0, 1) for t in tensors]
    raise ValueError(layout)


def max_length(lengths) -> int:
    return max(lengths, default=0)


@pytest.mark.parametrize("device, case", _params())
def test_varlen_matches_reference(device: str, case: Case):
    (q0, k0, v0), indexes = packed_inputs(case, device)
    q, k, v = (t.requires_grad_() for t in arrange((q0, k0, v0), case.layout))
    if case.layout != "contiguous":
        assert not q.is_contiguous()
    lengths = case.lengths
    out, lse = flash_attn_varlen_func(
        q, k, v, *indexes[:2], max_length(lengths.q), max_length(lengths.k), seqused_q=indexes[2], seqused_k=indexes[3],
        causal=case.causal, window_size=case.window, softcap=case.softcap, deterministic=case.deterministic,
        return_attn_probs=True,
    )
    dout = torch.randn(out.shape, device=device).to(case.dtype)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), dout)
    if case.deterministic:
        again = flash_attn_varlen_func(
            q, k, v, *indexes[:2], max_length(lengths.q), max_length(lengths.k), causal=case.causal, deterministic=True
        )
        for first, second, name in zip((dq, dk, dv), torch.autograd.grad(again, (q, k, v), dout), ("dq", "dk", "dv")):
            assert torch.equal(first, second), f"{name}: deterministic backward differs between runs"

    options = dict(causal=case.causal, window=case.window, softcap=case.softcap)
    index_lists = dict(
        cu_seqlens_q=lengths.cu(lengths.q), cu_seqlens_k=lengths.cu(lengths.k), seqused_q=lengths.used_q,
        seqused_k=lengths.used_k,
    )
    inputs64 = [t.detach().double().requires_grad_() for t in (q0, k0, v0)]
    out64, lse64 = reference.varlen_attention(*inputs64, **index_lists, **options)
    grads64 = torch.autograd.grad(out64, inputs64, dout.double())
    if case.dtype == torch.float32:
        same = [None] * 4
    else:
        inputs_same = [t.detach().clone().requires_grad_() for t in (q0, k0, v0)]
        out_same, _ = reference.varlen_attention(*inputs_same, **index_lists, compute_dtype=case.dtype, **options)
        same = [out_same, *torch.autograd.grad(out_same, inputs_same, dout)]

    assert out.dtype == case.dtype and out.shape == (q.shape[0], case.heads_q, case.head_dim_v)
    assert lse.shape == (case.heads_q, q.shape[0])
    reference.check("out", out, out64, same[0])
    reference.check_lse(lse, lse64)
    for name, actual, expected, same_precision in zip(("dq", "dk", "dv"), (dq, dk, dv), grads64, same[1:]):
        reference.check(name, actual, expected, same_precision)
    # Rows that see no key (unused, trailing, fully masked): out 0 and dq 0 exactly.
    empty_rows = torch.isneginf(lse64).transpose(0, 1)  # (total_q, heads)
    if empty_rows.any():
        assert (out[empty_rows] == 0).all() and (dq[empty_rows] == 0).all()


def test_varlen_equals_fixed_length_attention_per_sequence(device):
    """Each sequence of a packed batch gives what flash_attn_func gives for it alone (the same
    kernels on views): bit-equal on the CPU."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    lengths = (13, 1, 40)
    q, k, v = (torch.randn(sum(lengths), 4, 64, device=device).to(dtype) for _ in range(3))
    cu = torch.tensor(list(itertools.accumulate(lengths, initial=0)), dtype=torch.int32, device=device)
    out = flash_attn_varlen_func(q, k, v, cu, cu, max(lengths), max(lengths), causal=True)
    for start, end in zip(cu[:-1].tolist(), cu[1:].tolist()):
        alone = flash_attn_func(q[None, start:end], k[None, start:end], v[None, start:end], causal=True)[0]
        if device == "cpu":
            assert torch.equal(out[start:end], alone)
        else:
            torch.testing.assert_close(out[start:end], alone, rtol=1e-2, atol=1e-2)


def test_varlen_empty_batch(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q = torch.randn(0, 4, 64, device=device).to(dtype).requires_grad_()
    k = torch.randn(0, 2, 64, device=device).to(dtype).requires_grad_()
    cu = torch.zeros(1, dtype=torch.int32, device=device)
    out, lse = flash_attn_varlen_func(q, k, k, cu, cu, 0, 0, return_attn_probs=True)
    assert out.shape == (0, 4, 64) and lse.shape == (4, 0)
    out.sum().backward()
    assert q.grad.shape == q.shape and k.grad.shape == k.shape


def test_varlen_max_seqlen_larger_than_needed_is_fine(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = (torch.randn(10, 2, 64, device=device).to(dtype) for _ in range(3))
    cu = torch.tensor([0, 4, 10], dtype=torch.int32, device=device)
    exact = flash_attn_varlen_func(q, k, v, cu, cu, 6, 6, causal=True)
    generous = flash_attn_varlen_func(q, k, v, cu, cu, 1000, 1000, causal=True)
    assert torch.equal(exact, generous)
