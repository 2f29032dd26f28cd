"""ALiBi and dropout through flash_attn_func against the torch reference: ALiBi on every device,
dropout exactly against the reference given the library's keep mask (recomputed here with an
independent numpy Philox-4x32-10 and the library's keying), reproducibility under
torch.manual_seed, the kept fraction, and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference
from conftest import device_params
from flash_attention_swift import _features, flash_attn_func

_M0, _M1, _W0, _W1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_LOW = np.uint64(0xFFFFFFFF)


def _philox(c0, c1, c2, c3, k0, k1):
    """Philox 4x32-10 on uint64 arrays holding 32-bit values."""
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + _W0) & _LOW, (k1 + _W1) & _LOW
        p0, p1 = c0 * _M0, c2 * _M1
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0) & _LOW, p1 & _LOW, ((p0 >> np.uint64(32)) ^ c3 ^ k1) & _LOW, p0 & _LOW
    return c0, c1, c2, c3


def keep_mask(seed: int, offset: int, p: float, batch: int, heads: int, sq: int, sk: int) -> torch.Tensor:
    """The library's keep mask (batch, heads, sq, sk): counter (j // 16, i, b * heads + h,
    offset_lo), key (seed_lo, seed_hi + offset_hi); with j % 16 = 8 h' + 2 i' + e, key j's 8-bit
    number is byte i' of word 2 h' + e, kept iff below floor((1 - p) 2^8)."""
    b, h, i, j = np.meshgrid(np.arange(batch), np.arange(heads), np.arange(sq), np.arange(sk), indexing="ij")
    u = lambda a: a.astype(np.uint64)
    k0 = np.uint64(seed & 0xFFFFFFFF)
    k1 = np.uint64(((seed >> 32) + (offset >> 32)) & 0xFFFFFFFF)
    words = _philox(u(j // 16), u(i), u(b * heads + h), np.full(j.shape, offset & 0xFFFFFFFF, dtype=np.uint64), k0, k1)
    slot = j % 16
    word = np.choose((slot // 8) * 2 + slot % 2, words)
    number = (word >> u(((slot // 2) % 4) * 8)) & np.uint64(0xFF)
    threshold = min(int((1.0 - p) * 256.0), 255)
    return torch.from_numpy(number < np.uint64(threshold))


def test_philox_known_answer():
    words = _philox(*(np.array([0], dtype=np.uint64),) * 4, np.uint64(0), np.uint64(0))
    assert [int(w[0]) for w in words] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def _inputs(device, dtype, batch=2, sq=37, sk=53, hq=4, hkv=2, d=64):
    q, k, v = reference.random_inputs(batch, sq, sk, hq, hkv, d, d, dtype, device)
    return [t.requires_grad_() for t in (q, k, v)]


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("per_batch, causal, softcap", [(False, False, 0.0), (True, True, 0.0), (False, True, 5.0)])
def test_alibi_matches_reference(device, per_batch, causal, softcap):
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    q, k, v = _inputs(device, dtype)
    slopes = torch.rand(2, 4) if per_batch else torch.rand(4)
    out, lse = flash_attn_func(q, k, v, causal=causal, softcap=softcap, alibi_slopes=slopes.to(device), return_attn_probs=True)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    expected, expected_lse = reference.attention(q, k, v, causal=causal, softcap=softcap, alibi=slopes)
    expected_grads = torch.autograd.grad(expected, (q, k, v), dout.double())
    same = None
    if dtype != torch.float32:
        same_out, _ = reference.attention(
            q, k, v, causal=causal, softcap=softcap, alibi=slopes, compute_dtype=dtype)
        same = same_out
    reference.check("out", out.detach(), expected.detach(), None if same is None else same.detach())
    assert (lse.double() - expected_lse.detach()).abs().max().item() < 1e-3
    if dtype == torch.float32:
        for name, actual, wanted in zip(("dq", "dk", "dv"), grads, expected_grads):
            reference.check(name, actual, wanted, None)


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("p, causal", [(0.1, False), (0.5, True), (0.9, False)])
def test_dropout_matches_reference_given_the_mask(device, p, causal):
    """CPU in float32 against the float64 reference; CUDA (the FlashAttention-2 kernels, which the
    Hopper route hands dropout to) in bfloat16 under FlashAttention's rule against a bf16
    standard attention with the same mask."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    q, k, v = _inputs(device, dtype)
    torch.manual_seed(1234)
    out, lse = flash_attn_func(q, k, v, causal=causal, dropout_p=p, return_attn_probs=True)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    torch.manual_seed(1234)
    _, seed, offset = _features.dropout_state(q, p)
    keep = keep_mask(seed, offset, p, 2, 4, 37, 53).to(device)
    expected, expected_lse = reference.attention(q, k, v, causal=causal, keep=keep, dropout_p=p)
    expected_grads = torch.autograd.grad(expected, (q, k, v), dout.double())
    same, same_grads = None, (None, None, None)
    if dtype != torch.float32:
        same, _ = reference.attention(q, k, v, causal=causal, keep=keep, dropout_p=p, compute_dtype=dtype)
        same_grads = torch.autograd.grad(same, (q, k, v), dout)
        same = same.detach()
    reference.check("out", out.detach(), expected.detach(), same)
    # The LSE is the undropped softmax's.
    assert (lse.double() - expected_lse.detach()).abs().max().item() < (1e-4 if dtype == torch.float32 else 1e-3)
    for name, actual, wanted, standard in zip(("dq", "dk", "dv"), grads, expected_grads, same_grads):
        reference.check(name, actual, wanted, standard)


def test_dropout_reproduces_under_manual_seed_and_differs_between_calls():
    q, k, v = (t.detach() for t in _inputs("cpu", torch.float32))
    torch.manual_seed(7)
    first = flash_attn_func(q, k, v, dropout_p=0.2)
    second = flash_attn_func(q, k, v, dropout_p=0.2)
    torch.manual_seed(7)
    again = flash_attn_func(q, k, v, dropout_p=0.2)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


def test_kept_fraction():
    # q = k = 0: every key weighs 1/N; v = 1: each output is the row's kept fraction / (1 - p).
    p = 0.3
    q = torch.zeros(1, 512, 4, 16)
    v = torch.ones(1, 512, 4, 16)
    out = flash_attn_func(q, q, v, dropout_p=p)
    kept = (out[..., 0].double().mean() * (1 - p)).item()
    assert abs(kept - (1 - p)) < 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_dropout_reproduces_under_manual_seed():
    q, k, v = (t.detach() for t in _inputs("cuda", torch.bfloat16))
    torch.manual_seed(7)
    first = flash_attn_func(q, k, v, dropout_p=0.2)
    second = flash_attn_func(q, k, v, dropout_p=0.2)
    torch.manual_seed(7)
    again = flash_attn_func(q, k, v, dropout_p=0.2)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)