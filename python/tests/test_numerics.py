"""The case grid: forward (out, LSE) and backward (dq, dk, dv through autograd) of
flash_attn_func against a float64 standard attention, with FlashAttention's pass rule
(reference.py). The CPU grid runs everywhere; the CUDA grid (>= 2,000 cases over head dims
64-256, causal, windows, softcap, GQA, odd lengths, strided inputs) where a GPU is usable:
`pytest -k cuda`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import torch

from flash_attention_swift import flash_attn_func

import reference
from conftest import needs_cuda


@dataclass(frozen=True)
class Case:
    dtype: torch.dtype
    seqlen_q: int
    seqlen_k: int
    heads_q: int
    heads_kv: int
    head_dim: int
    head_dim_v: int
    mask: str
    softcap: float
    layout: str
    batch: int = 2
    deterministic: bool = False

    @property
    def causal(self) -> bool:
        return self.mask in ("causal", "causal_window")

    @property
    def window(self) -> tuple[int, int]:
        return {"window": (37, 5), "causal_window": (63, -1)}.get(self.mask, (-1, -1))

    def id(self, device: str) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (
            f"{device}-{dtype}-b{self.batch}-sq{self.seqlen_q}-sk{self.seqlen_k}-h{self.heads_q}x{self.heads_kv}"
            f"-d{self.head_dim}x{self.head_dim_v}-{self.mask}-cap{self.softcap:g}-{self.layout}"
            + ("-det" if self.deterministic else "")
        )


MASKS = ("none", "causal", "window", "causal_window")
LAYOUTS = ("contiguous", "padded", "heads_first")
HALF_DTYPES = (torch.float16, torch.bfloat16)


def cpu_cases() -> list[Case]:
    cases = []
    # Every dtype, length pair and mask (odd lengths, one-key and one-query rows, seqlen_q >
    # seqlen_k under causal: rows that see no key).
    lengths = ((1, 1), (7, 7), (17, 129), (129, 17), (1000, 1000), (1, 1000))
    for dtype, (sq, sk), mask in itertools.product((torch.float32, *HALF_DTYPES), lengths, MASKS):
        batch = 1 if sq * sk >= 10**6 else 2
        cases.append(Case(dtype, sq, sk, 4, 2, 64, 64, mask, 0.0, "contiguous", batch=batch))
    # Softcap, GQA/MQA, d != d_v and strided layouts, crossed.
    for dtype, softcap, (hq, hkv), (d, dv), layout in itertools.product(
        (torch.float32, *HALF_DTYPES), (0.0, 15.0), ((2, 2), (4, 1), (6, 3)), ((64, 64), (40, 72), (256, 128)), LAYOUTS
    ):
        cases.append(Case(dtype, 17, 129, hq, hkv, d, dv, "causal", softcap, layout))
    for dtype in (torch.float32, torch.bfloat16):
        cases.append(Case(dtype, 129, 129, 4, 2, 64, 64, "causal", 0.0, "contiguous", deterministic=True))
    return cases


def cuda_cases() -> list[Case]:
    cases = []
    lengths = ((1, 1), (7, 7), (1, 129), (17, 129), (129, 17), (113, 203), (128, 128), (1000, 1000))
    head_dims = ((64, 64), (96, 96), (128, 128), (192, 192), (256, 256), (192, 128))
    for (d, dv), (sq, sk), mask, softcap, (hq, hkv), dtype in itertools.product(
        head_dims, lengths, MASKS, (0.0, 30.0), ((8, 8), (8, 2)), HALF_DTYPES
    ):
        cases.append(Case(dtype, sq, sk, hq, hkv, d, dv, mask, softcap, "contiguous", batch=1 if sq >= 1000 else 2))
    for (d, dv), (sq, sk), mask, softcap, (hq, hkv), dtype, layout in itertools.product(
        ((64, 64), (128, 128)), lengths, MASKS, (0.0, 30.0), ((8, 8), (8, 2)), HALF_DTYPES, ("padded", "heads_first")
    ):
        cases.append(Case(dtype, sq, sk, hq, hkv, d, dv, mask, softcap, layout, batch=1 if sq >= 1000 else 2))
    for d in (64, 128, 256):
        for dtype in HALF_DTYPES:
            cases.append(Case(dtype, 257, 257, 8, 2, d, d, "causal", 0.0, "contiguous", deterministic=True))
    # Heads past 256 (the FlashAttention-2 kernels: the forward in value groups, the backward on
    # a 32 x 32 tile), Gemma-class d 512 and an uneven d 320 / d_v 264.
    for (d, dv), (sq, sk), mask, dtype in itertools.product(
        ((512, 512), (320, 264)), ((1, 129), (17, 129), (129, 17), (1000, 1000)), MASKS, HALF_DTYPES
    ):
        cases.append(Case(dtype, sq, sk, 8, 2, d, dv, mask, 0.0, "contiguous", batch=1 if sq >= 1000 else 2))
    for dtype in HALF_DTYPES:
        cases.append(Case(dtype, 129, 129, 4, 2, 512, 512, "causal", 30.0, "contiguous"))
        cases.append(Case(dtype, 257, 257, 8, 2, 512, 512, "causal", 0.0, "contiguous", deterministic=True))
    return cases


def _params():
    params = [pytest.param("cpu", case, id=case.id("cpu")) for case in cpu_cases()]
    params += [pytest.param("cuda", case, id=case.id("cuda"), marks=needs_cuda) for case in cuda_cases()]
    return params


def arrange(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout with a unit last stride: `padded` rows inside a
    wider buffer, `heads_first` a transposed (batch, heads, seqlen, dim) buffer."""
    if layout == "contiguous":
        return tensor.clone()
    if layout == "padded":
        wide = torch.full((*tensor.shape[:-1], tensor.shape[-1] + 8), float("nan"), dtype=tensor.dtype, device=tensor.device)
        wide[..., : tensor.shape[-1]] = tensor
        return wide[..., : tensor.shape[-1]]
    if layout == "heads_first":
        return tensor.transpose(1, 2).contiguous().transpose(1, 2)
    raise ValueError(layout)


def gradients(out, inputs, dout):
    return torch.autograd.grad(out, inputs, dout)


@pytest.mark.parametrize("device, case", _params())
def test_attention_matches_reference(device: str, case: Case):
    q0, k0, v0 = reference.random_inputs(
        case.batch, case.seqlen_q, case.seqlen_k, case.heads_q, case.heads_kv, case.head_dim, case.head_dim_v,
        case.dtype, device,
    )
    q, k, v = (arrange(t, case.layout).requires_grad_() for t in (q0, k0, v0))
    out, lse = flash_attn_func(
        q, k, v, causal=case.causal, window_size=case.window, softcap=case.softcap,
        deterministic=case.deterministic, return_attn_probs=True,
    )
    dout = torch.randn(out.shape, device=device).to(case.dtype)
    dq, dk, dv = gradients(out, (q, k, v), dout)
    if case.deterministic:
        again = gradients(flash_attn_func(q, k, v, causal=case.causal, deterministic=True), (q, k, v), dout)
        for first, second, name in zip((dq, dk, dv), again, ("dq", "dk", "dv")):
            assert torch.equal(first, second), f"{name}: deterministic backward differs between runs"

    options = dict(causal=case.causal, window=case.window, softcap=case.softcap)
    inputs64 = [t.detach().double().requires_grad_() for t in (q0, k0, v0)]
    out64, lse64 = reference.attention(*inputs64, **options)
    grads64 = gradients(out64, inputs64, dout.double())
    if case.dtype == torch.float32:
        same = [None] * 4
    else:
        inputs_same = [t.detach().clone().requires_grad_() for t in (q0, k0, v0)]
        out_same, _ = reference.attention(*inputs_same, compute_dtype=case.dtype, **options)
        same = [out_same, *gradients(out_same, inputs_same, dout)]

    assert out.dtype == case.dtype and out.shape == (case.batch, case.seqlen_q, case.heads_q, case.head_dim_v)
    reference.check("out", out, out64, same[0])
    reference.check_lse(lse, lse64)
    for name, actual, expected, same_precision in zip(("dq", "dk", "dv"), (dq, dk, dv), grads64, same[1:]):
        reference.check(name, actual, expected, same_precision)
    # A row with no visible key: out 0 and dq 0 exactly (FlashAttention's convention).
    empty_rows = torch.isneginf(lse64).transpose(1, 2)  # (batch, seqlen_q, heads)
    if empty_rows.any():
        assert (out[empty_rows] == 0).all() and (dq[empty_rows] == 0).all()
