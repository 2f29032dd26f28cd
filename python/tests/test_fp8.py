"""fp8 (torch.float8_e4m3fn) forward through flash_attn_func with FA3's q_descale/k_descale/
v_descale: against a float64 standard attention on the dequantised inputs, on the CPU and
(where an H100 is usable) on CUDA, with FA3's fp8 rule (at most a few times the error of a
standard attention that rounds P to e4m3 and O to bfloat16); and the refusals."""

from __future__ import annotations

import pytest
import torch

from flash_attention_swift import flash_attn_func

import reference
from conftest import device_params

FP8 = getattr(torch, "float8_e4m3fn", None)
pytestmark = pytest.mark.skipif(FP8 is None, reason="this torch has no float8_e4m3fn")


def _inputs(device, batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, outliers=False):
    generator = torch.Generator().manual_seed(1234 + seqlen_q * 7 + head_dim)
    q, k, v = (
        torch.randn(batch, seqlen, heads, head_dim, generator=generator)
        for seqlen, heads in ((seqlen_q, heads_q), (seqlen_k, heads_kv), (seqlen_k, heads_kv))
    )
    if outliers:  # outlier channels, as activations of large language models have
        q[..., 3::16] *= 16
        k[..., 3::16] *= 16
    descales = [torch.rand(batch, heads_kv, generator=generator) * 1.75 + 0.25 for _ in range(3)]
    return [t.to(FP8).to(device) for t in (q, k, v)], [d.to(device) for d in descales]


def _dequantised(tensor, descale):
    group = tensor.shape[2] // descale.shape[1]
    factor = descale.double().repeat_interleave(group, dim=1)[:, None, :, None]
    return tensor.double() * factor


def _same_precision(q, k, v, causal, window):
    """Standard attention as an fp8 pipeline computes it: float32 scores and softmax, P = 2^8 exp
    rounded to e4m3, O rounded to bfloat16 (the library's yardstick, stricter than FA3's)."""
    batch, seqlen_q, heads, dim = q.shape
    group = heads // k.shape[2]
    k, v = (t.float().repeat_interleave(group, dim=2) for t in (k, v))
    scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k) * dim ** -0.5
    mask = reference.visible(seqlen_q, k.shape[1], causal, window, q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    peak = scores.amax(dim=-1, keepdim=True).nan_to_num(neginf=0.0)
    p = torch.exp(scores - peak) * 256
    total = p.sum(dim=-1, keepdim=True)
    stored = p.to(FP8).float()
    out = torch.einsum("bhqk,bkhd->bqhd", stored / total.clamp_min(1e-30), v)
    return out.to(torch.bfloat16)


def _tensor_core_lse_bound(q, k, causal, window):
    """Per LSE row (batch, heads, seqlen_q): Hopper's fp8 tensor cores accumulate e4m3 products
    in 13-bit mantissas, truncated once per k = 32 step, so a score may be off by up to
    (d / 32) 2^-13 scale sum_c |q_c k_c| and the LSE by the largest such bound over its visible
    keys (ReferenceAttention.float8ScoreErrorBound, the same model, for `verify`); plus 1e-5
    for the float32 LSE itself. The test allows 4x it, the factor of the fp8 rule for O: the
    model is a yardstick, not the hardware's exact behaviour (an H100 run of 2026-12-06 put one
    outlier row at 1.47x it)."""
    dim = q.shape[-1]
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    magnitude = torch.einsum("bqhd,bkhd->bhqk", q.abs(), k.abs()) * dim ** -0.5
    mask = reference.visible(q.shape[1], k.shape[1], causal, window, q.device)
    largest = magnitude.masked_fill(~mask, 0).amax(dim=-1)
    return largest * (max(dim // 32, 1) * 2.0 ** -13) + 1e-5


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize(
    "shape,causal,window,outliers",
    [
        ((2, 37, 70, 4, 2, 64), False, (-1, -1), False),
        ((1, 129, 129, 2, 2, 128), True, (-1, -1), False),
        ((1, 65, 190, 2, 1, 128), False, (16, 8), False),
        ((1, 33, 147, 2, 2, 256), True, (-1, -1), False),
        ((1, 200, 300, 2, 2, 128), False, (-1, -1), True),
    ],
)
def test_fp8_forward_matches_reference(device, shape, causal, window, outliers):
    (q, k, v), (qd, kd, vd) = _inputs(device, *shape, outliers=outliers)
    out, lse = flash_attn_func(
        q, k, v, causal=causal, window_size=window, q_descale=qd, k_descale=kd, v_descale=vd, return_attn_probs=True
    )
    assert out.dtype == torch.bfloat16 and lse.dtype == torch.float32
    dq, dk, dv = _dequantised(q, qd), _dequantised(k, kd), _dequantised(v, vd)
    ref_out, ref_lse = reference.attention(dq, dk, dv, causal=causal, window=window)
    baseline = _same_precision(dq, dk, dv, causal, window)
    error = (out.double() - ref_out).norm() / ref_out.norm()
    baseline_error = (baseline.double() - ref_out).norm() / ref_out.norm()
    assert torch.isfinite(out).all()
    assert error <= 4 * baseline_error + 1e-6, f"fp8 out error {error:.3e} > 4 x baseline {baseline_error:.3e}"
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    error = (lse.double() - ref_lse)[finite].abs()
    if device == "cuda":
        bound = _tensor_core_lse_bound(dq, dk, causal, window)[finite]
        worst = (error / bound).max().item()
        assert worst <= 4.0, f"LSE error {worst:.2f}x the fp8 accumulation model's bound (allowed: 4x)"
    else:
        assert error.max() < 1e-3


def test_fp8_refusals():
    (q, k, v), (qd, _, _) = _inputs("cpu", 1, 8, 8, 2, 2, 64)
    with pytest.raises(TypeError, match="float32"):
        flash_attn_func(q, k, v, q_descale=qd.double())
    with pytest.raises(TypeError, match="float8_e4m3fn"):
        flash_attn_func(q.float(), k.float(), v.float(), q_descale=qd)
    with pytest.raises(ValueError, match="q_descale"):
        flash_attn_func(q, k, v, q_descale=qd[:, :1].contiguous())
    assert not flash_attn_func(q, k, v).requires_grad  # forward only: no autograd graph
