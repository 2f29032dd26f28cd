"""flash_attn_combine: attention over the keys split into chunks, each chunk's (out, lse) merged,
must equal attention over all keys (against the float64 reference and flash_attn_func); splits
that saw no key contribute nothing, even when their out holds NaN; FA3's shapes, out= and
out_dtype; bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from flash_attention_swift import flash_attn_combine, flash_attn_func, flash_attn_varlen_func

import reference


def split_attention(q, k, v, bounds, **options):
    """Each key chunk's out (as float32) and lse, stacked as FA3's out_partial (splits, batch,
    seqlen, heads, d) and lse_partial (splits, batch, seqlen, heads)."""
    # The partial attentions in fp32 come from the CPU backend (the CUDA kernels store fp16/bf16);
    # the merge under test then runs on the inputs' device.
    device = q.device
    q, k, v = q.cpu(), k.cpu(), v.cpu()
    outs, lses = [], []
    for start, end in zip(bounds[:-1], bounds[1:]):
        out, lse = flash_attn_func(q, k[:, start:end], v[:, start:end], return_attn_probs=True, **options)
        out, lse = out.to(device), lse.to(device)
        outs.append(out.float())
        lses.append(lse.transpose(1, 2))
    return torch.stack(outs), torch.stack(lses)


@pytest.mark.parametrize("bounds", [(0, 300), (0, 1, 300), (0, 7, 129, 200, 300), (0, 0, 150, 150, 300)], ids=lambda b: "-".join(map(str, b)))
def test_combined_chunks_equal_attention_over_all_keys(device, bounds):
    q, k, v = reference.random_inputs(2, 17, 300, 4, 2, 64, 48, torch.float32, device)
    out_partial, lse_partial = split_attention(q, k, v, bounds, softcap=12.0)
    assert out_partial.shape == (len(bounds) - 1, 2, 17, 4, 48) and lse_partial.shape == (len(bounds) - 1, 2, 17, 4)
    out, lse = flash_attn_combine(out_partial, lse_partial)
    assert out.dtype == torch.float32 and out.shape == (2, 17, 4, 48) and lse.shape == (2, 17, 4)
    out64, lse64 = reference.attention(q.double(), k.double(), v.double(), softcap=12.0)
    reference.check("out", out, out64, None)
    reference.check_lse(lse.transpose(1, 2).contiguous(), lse64)


def test_weights_carry_no_rounding_of_the_merged_lse(device):
    """At |lse| near 72 half a unit in the float32 lse's last place is 4e-6 relative: weights
    exp(lse_i - lse) from the rounded merged lse scale the whole output by that much (measured
    66 units of 2^-24 of max |out_i| over 50 draws), which in a near-one-hot row outweighs the
    smaller splits' share. Normalised by their sum the weights carry float32 rounding only
    (measured 4.3 units); the bound is 16."""
    lse_partial = (72 + 3 * torch.randn(3, 1, 64, 2)).to(device)
    out_partial = torch.randn(3, 1, 64, 2, 16).to(device)
    out, _ = flash_attn_combine(out_partial, lse_partial)
    lse64 = lse_partial.double()
    weights = (lse64 - lse64.logsumexp(0)).exp().unsqueeze(-1)
    exact = (weights * out_partial.double()).sum(0)
    error = ((out.double() - exact).abs() / out_partial.abs().amax(0).double()).max().item()
    assert error <= 16 * 2**-24, f"{error / 2**-24:.1f} units of 2^-24 of max |out_i|"


def test_rows_no_split_saw_are_zero_and_minus_infinity(device):
    """A split that saw no key (lse -inf) contributes nothing, even with NaN in its out; a row
    no split saw gets out 0 and lse -inf."""
    q, k, v = reference.random_inputs(1, 9, 40, 2, 2, 64, 64, torch.float32, device)
    out_partial, lse_partial = split_attention(q, k, v, (0, 0, 20, 20, 40))
    assert torch.isneginf(lse_partial[0]).all() and torch.isneginf(lse_partial[2]).all()
    out_partial[torch.isneginf(lse_partial)] = math.nan
    out, lse = flash_attn_combine(out_partial, lse_partial)
    expected, expected_lse = (t.to(q.device) for t in flash_attn_func(q.cpu(), k.cpu(), v.cpu(), return_attn_probs=True))
    reference.check("out", out, expected.double(), None)
    torch.testing.assert_close(lse, expected_lse.transpose(1, 2), rtol=1e-5, atol=1e-5)
    empty = torch.full((1, 2, 3, 8), -math.inf, device=device)
    out, lse = flash_attn_combine(torch.full((1, 2, 3, 8, 16), math.nan, device=device), empty)
    assert (out == 0).all() and torch.isneginf(lse).all()


def test_out_and_out_dtype(device):
    q, k, v = reference.random_inputs(2, 5, 64, 2, 1, 32, 32, torch.float32, device)
    out_partial, lse_partial = split_attention(q, k, v, (0, 20, 64))
    expected, expected_lse = flash_attn_combine(out_partial, lse_partial)
    for dtype in (torch.float16, torch.bfloat16):
        out, _ = flash_attn_combine(out_partial, lse_partial, out_dtype=dtype)
        assert out.dtype == dtype and torch.equal(out, expected.to(dtype))
    buffer = torch.full((2, 5, 2, 32), math.nan, dtype=torch.bfloat16, device=device)
    out, lse = flash_attn_combine(out_partial, lse_partial, out=buffer, out_dtype=torch.bfloat16)
    assert out is buffer and torch.equal(buffer, expected.bfloat16()) and torch.equal(lse, expected_lse)


def test_varlen_results_combine_too(device):
    """Any leading shape: varlen (splits, total_q, heads, d) with (splits, total_q, heads)."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    q = torch.randn(12, 2, 64, device=device).to(dtype)
    k, v = (torch.randn(30, 2, 64, device=device).to(dtype) for _ in range(2))
    cu_q = torch.tensor([0, 5, 12], dtype=torch.int32, device=device)
    # Sequence 0 has keys 0:15, sequence 1 keys 15:30; each split takes part of each.
    splits = ([(0, 8), (15, 22)], [(8, 15), (22, 30)])
    outs, lses = [], []
    for ranges in splits:
        kk = torch.cat([k[start:end] for start, end in ranges])
        vv = torch.cat([v[start:end] for start, end in ranges])
        lengths = [end - start for start, end in ranges]
        cu_k = torch.tensor([0, lengths[0], sum(lengths)], dtype=torch.int32, device=device)
        out, lse = flash_attn_varlen_func(q, kk, vv, cu_q, cu_k, 7, max(lengths), return_attn_probs=True)
        outs.append(out.float())
        lses.append(lse.transpose(0, 1))
    out, lse = flash_attn_combine(torch.stack(outs), torch.stack(lses))
    cu_k = torch.tensor([0, 15, 30], dtype=torch.int32, device=device)
    expected, expected_lse = flash_attn_varlen_func(q, k, v, cu_q, cu_k, 7, 15, return_attn_probs=True)
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(out.to(dtype), expected, **tolerance)
    torch.testing.assert_close(lse, expected_lse.transpose(0, 1), rtol=1e-5, atol=1e-5)


BAD = [
    ("half partials", TypeError, "out_partial must be torch.float32", lambda: (torch.zeros(2, 1, 3, 2, 8).half(), torch.zeros(2, 1, 3, 2)), {}),
    ("lse shape", ValueError, r"lse_partial\.shape", lambda: (torch.zeros(2, 1, 3, 2, 8), torch.zeros(2, 1, 2, 3)), {}),
    ("rank 1", ValueError, "out_partial must be", lambda: (torch.zeros(8), torch.zeros(())), {}),
    ("out_dtype int", TypeError, "out_dtype", lambda: (torch.zeros(2, 1, 3, 2, 8), torch.zeros(2, 1, 3, 2)), dict(out_dtype=torch.int32)),
    ("out shape", ValueError, r"out\.shape", lambda: (torch.zeros(2, 1, 3, 2, 8), torch.zeros(2, 1, 3, 2)), dict(out=torch.zeros(1, 3, 2, 4))),
    ("out dtype", TypeError, "out has dtype", lambda: (torch.zeros(2, 1, 3, 2, 8), torch.zeros(2, 1, 3, 2)), dict(out=torch.zeros(1, 3, 2, 8).half())),
    ("not tensors", TypeError, "out_partial must be a torch.Tensor", lambda: ([0.0], torch.zeros(1)), {}),
]


@pytest.mark.parametrize("exception, message, inputs, options", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs(exception, message, inputs, options):
    with pytest.raises(exception, match=message):
        flash_attn_combine(*inputs(), **options)
