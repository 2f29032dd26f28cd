"""PyTorch integration of the variable-length and KV-cache ops: autograd through the registered
ops agreeing with the eager fast path, torch.compile(fullgraph=True) with no graph break (the
KV-cache append functionalized and applied), torch.library.opcheck, fake tensors, and the
missing backward of the KV-cache op raising."""

from __future__ import annotations

import math

import pytest
import torch

from flash_attention_swift import flash_attn_varlen_func, flash_attn_with_kvcache

LENGTHS = (5, 0, 17, 1)


def _dtype(device):
    return torch.float32 if device == "cpu" else torch.bfloat16


def _varlen_inputs(device, requires_grad=True, lengths=LENGTHS):
    total = sum(lengths)
    q = torch.randn(total, 4, 64, device=device).to(_dtype(device))
    k, v = (torch.randn(total, 2, 64, device=device).to(_dtype(device)) for _ in range(2))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=device)
    return [t.requires_grad_(requires_grad) for t in (q, k, v)], cu, max(lengths)


def _assert_matches(actual, expected, device):
    if device == "cpu":
        assert torch.equal(actual, expected)
    else:
        torch.testing.assert_close(actual, expected, rtol=2e-2, atol=2e-2)


def _targets(graph_module):
    return {str(node.target) for node in graph_module.graph.nodes if node.op == "call_function"}


def test_varlen_registered_op_and_eager_fast_path_agree(device):
    (q, k, v), cu, longest = _varlen_inputs(device)
    out, lse = flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, causal=True, return_attn_probs=True)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    op_out, op_lse = torch.ops.flash_attention_swift.varlen_fwd(
        q, k, v, cu, cu, None, None, longest, longest, 64 ** -0.5, True, -1, -1, 0.0, False
    )
    op_grads = torch.autograd.grad(op_out, (q, k, v), dout)
    assert torch.equal(out, op_out) and torch.equal(lse, op_lse)
    for actual, expected in zip(op_grads, grads):
        _assert_matches(actual, expected, device)
    assert not lse.requires_grad


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_varlen_compile_fullgraph_forward_and_backward(device, dynamic):
    graphs = []

    def recording_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return torch._dynamo.lookup_backend("aot_eager")(graph_module, example_inputs)

    def attention(q, k, v, cu, longest):
        return flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, causal=True, window_size=(8, -1), softcap=20.0)

    compiled = torch.compile(attention, fullgraph=True, backend=recording_backend, dynamic=dynamic)
    for lengths in (LENGTHS, (3, 9)) if dynamic else (LENGTHS,):
        (q, k, v), cu, longest = _varlen_inputs(device, lengths=lengths)
        out = compiled(q, k, v, cu, longest)
        dout = torch.randn_like(out)
        grads = torch.autograd.grad(out, (q, k, v), dout)
        eager = attention(q, k, v, cu, longest)
        assert torch.equal(out, eager)
        for actual, expected in zip(grads, torch.autograd.grad(eager, (q, k, v), dout)):
            _assert_matches(actual, expected, device)
    assert len(graphs) >= 1
    assert any("flash_attention_swift.varlen_fwd" in target for target in _targets(graphs[0]))


def test_varlen_opcheck(device):
    (q, k, v), cu, longest = _varlen_inputs(device, requires_grad=False)
    used = torch.tensor([5, 0, 9, 1], dtype=torch.int32, device=device)
    torch.library.opcheck(
        torch.ops.flash_attention_swift.varlen_fwd.default,
        (q, k, v, cu, cu, used, None, longest, longest, 0.2, True, -1, -1, 0.0, False),
    )
    out, lse = flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, return_attn_probs=True)
    torch.library.opcheck(
        torch.ops.flash_attention_swift.varlen_bwd.default,
        (torch.randn_like(out), q, k, v, out, lse, cu, cu, None, None, longest, longest, 0.125, False, 4, 4, 0.0, False),
    )


def _cache_inputs(device, new_tokens=1):
    dtype = _dtype(device)
    q = torch.randn(2, 1, 4, 64, device=device).to(dtype)
    k_cache, v_cache = (torch.full((7, 3, 2, 64), math.nan, device=device).to(dtype) for _ in range(2))
    page_table = torch.tensor([[5, 0, 3], [1, 6, 2]], dtype=torch.int32, device=device)
    for cache in (k_cache, v_cache):
        cache[[5, 0, 1]] = torch.randn(3, 3, 2, 64, device=device).to(dtype)
    cache_seqlens = torch.tensor([4, 2], dtype=torch.int32, device=device)
    k, v = (torch.randn(2, new_tokens, 2, 64, device=device).to(dtype) for _ in range(2))
    return q, k_cache, v_cache, k, v, cache_seqlens, page_table


def test_kvcache_compile_fullgraph_appends_in_place(device):
    """The compiled call must append to the caller's cache exactly as the eager call does
    (functionalization writes the mutation back), with our op in the one graph."""
    graphs = []

    def recording_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return torch._dynamo.lookup_backend("aot_eager")(graph_module, example_inputs)

    def step(q, k_cache, v_cache, k, v, cache_seqlens, page_table):
        return flash_attn_with_kvcache(
            q, k_cache, v_cache, k, v, cache_seqlens=cache_seqlens, page_table=page_table, causal=True
        )

    inputs = _cache_inputs(device)
    twin = [t.clone() for t in inputs]
    out = torch.compile(step, fullgraph=True, backend=recording_backend)(*inputs)
    expected = step(*twin)
    assert torch.equal(out, expected)
    for actual, wanted in zip(inputs[1:3], twin[1:3]):
        assert torch.equal(torch.isnan(actual), torch.isnan(wanted))
        assert torch.equal(actual.nan_to_num(), wanted.nan_to_num())
    assert not torch.isnan(inputs[1][0, 1]).any(), "the new key of sequence 0 (page 0, slot 1) was not written"
    assert len(graphs) == 1 and any("flash_attention_swift.kvcache_fwd" in t for t in _targets(graphs[0]))


def test_kvcache_compile_inductor_int_cache_seqlens(device):
    def step(q, k_cache, v_cache, k, v):
        return flash_attn_with_kvcache(q, k_cache, v_cache, k, v, cache_seqlens=3, causal=True, return_softmax_lse=True)

    dtype = _dtype(device)
    q = torch.randn(2, 2, 4, 64, device=device).to(dtype)
    k_cache, v_cache = (torch.randn(2, 9, 2, 64, device=device).to(dtype) for _ in range(2))
    k, v = (torch.randn(2, 2, 2, 64, device=device).to(dtype) for _ in range(2))
    k_twin, v_twin = k_cache.clone(), v_cache.clone()
    out, lse, *_ = torch.compile(step, fullgraph=True)(q, k_cache, v_cache, k, v)
    expected, expected_lse, *_ = step(q, k_twin, v_twin, k, v)
    assert torch.equal(out, expected) and torch.equal(lse, expected_lse)
    assert torch.equal(k_cache, k_twin) and torch.equal(v_cache, v_twin)
    assert torch.equal(k_cache[:, 3:5], k)


def test_kvcache_opcheck(device):
    q, k_cache, v_cache, k, v, cache_seqlens, page_table = _cache_inputs(device)
    for cache in (k_cache, v_cache):
        cache.nan_to_num_(0.0)  # opcheck compares the caches after runs with equal_nan off
    torch.library.opcheck(
        torch.ops.flash_attention_swift.kvcache_fwd.default,
        (q, k_cache, v_cache, k, v, cache_seqlens, None, page_table, 0.125, True, -1, -1, 0.0, 0),
    )
    torch.library.opcheck(
        torch.ops.flash_attention_swift.kvcache_fwd.default,
        (q, k_cache, v_cache, None, None, cache_seqlens, None, page_table, 0.125, False, 2, 0, 5.0, 2),
    )


def test_kvcache_has_no_backward(device):
    q, k_cache, v_cache, _, _, cache_seqlens, page_table = _cache_inputs(device)
    q.requires_grad_()
    out = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=cache_seqlens, page_table=page_table)
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="autograd"):
        out.sum().backward()


def test_fake_tensors_give_shapes_without_library_calls():
    from torch._subclasses.fake_tensor import FakeTensorMode

    (q, k, v), cu, longest = _varlen_inputs("cpu", requires_grad=False)
    v = v[..., :32].contiguous()
    cache_inputs = _cache_inputs("cpu", new_tokens=2)
    with FakeTensorMode() as mode:
        fake_q, fake_k, fake_v, fake_cu = (mode.from_tensor(t) for t in (q, k, v, cu))
        out, lse = flash_attn_varlen_func(fake_q, fake_k, fake_v, fake_cu, fake_cu, longest, longest, return_attn_probs=True)
        assert out.shape == (q.shape[0], 4, 32) and lse.shape == (4, q.shape[0])
        fakes = [mode.from_tensor(t) for t in cache_inputs]
        out, lse, *_ = flash_attn_with_kvcache(*fakes[:5], cache_seqlens=fakes[5], page_table=fakes[6], return_softmax_lse=True)
        assert out.shape == (2, 1, 4, 64) and lse.shape == (2, 4, 1)


def test_varlen_autocast_casts_float32_inputs(device):
    (q, k, v), cu, longest = _varlen_inputs(device)
    q, k, v = (t.detach().float().requires_grad_() for t in (q, k, v))
    with torch.autocast(device, dtype=torch.bfloat16):
        out = flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, causal=True)
    assert out.dtype == torch.bfloat16
    expected = flash_attn_varlen_func(*(t.bfloat16() for t in (q, k, v)), cu, cu, longest, longest, causal=True)
    assert torch.equal(out, expected)
    out.float().sum().backward()
    assert q.grad.dtype == torch.float32 and torch.isfinite(q.grad).all()


def test_kvcache_append_bumps_the_caches_version_counters(device):
    """Autograd learns that the caches changed (a tensor saved for backward and then appended to
    is caught), on the eager path as through the registered op."""
    q, k_cache, v_cache, k, v, cache_seqlens, page_table = _cache_inputs(device)
    before = (k_cache._version, v_cache._version)
    flash_attn_with_kvcache(q, k_cache, v_cache, k, v, cache_seqlens=cache_seqlens, page_table=page_table)
    assert k_cache._version > before[0] and v_cache._version > before[1]
    weight = torch.ones(1, device=device, dtype=k_cache.dtype, requires_grad=True)
    product = (k_cache.nan_to_num() * weight).sum()  # saves k_cache's result, not k_cache itself
    saved = k_cache.nan_to_num_().mul(weight).sum()  # saves k_cache for backward (it is mul's input)
    flash_attn_with_kvcache(q, k_cache, v_cache, k, v, cache_seqlens=cache_seqlens, page_table=page_table)
    product.backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()
