"""PyTorch integration: autograd through the registered ops, torch.compile(fullgraph=True)
with no graph break, torch.library.opcheck, the eager fast path agreeing with the op, the GIL
released during CPU calls, concurrent callers, and CUDA streams."""

from __future__ import annotations

import sys
import threading

import pytest
import torch

from flash_attention_swift import _ops, flash_attn_func, flash_attn_qkvpacked_func

import reference
from conftest import needs_cuda

OPTION_SETS = [
    dict(causal=False),
    dict(causal=True),
    dict(causal=True, window_size=(16, -1)),
    dict(window_size=(8, 4), softcap=20.0),
]
OPTION_IDS = ["plain", "causal", "causal_window", "window_softcap"]


def _dtype(device):
    return torch.float32 if device == "cpu" else torch.bfloat16


def _inputs(device, sq=33, sk=47, hq=4, hkv=2, d=64, dv=32, requires_grad=True):
    tensors = reference.random_inputs(2, sq, sk, hq, hkv, d, dv, _dtype(device), device)
    return [t.requires_grad_(requires_grad) for t in tensors]


def _assert_matches(actual, expected, device):
    if device == "cpu":  # the CPU backend is deterministic: the same call gives the same bits
        assert torch.equal(actual, expected)
    else:  # GPU backward kernels may add into dQ in any order
        torch.testing.assert_close(actual, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("options", OPTION_SETS, ids=OPTION_IDS)
def test_registered_op_and_eager_fast_path_agree(device, options):
    q, k, v = _inputs(device)
    out, lse = flash_attn_func(q, k, v, return_attn_probs=True, **options)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    window = options.get("window_size", (-1, -1))
    op_out, op_lse = torch.ops.flash_attention_swift.fwd(
        q, k, v, 64 ** -0.5, options.get("causal", False), window[0], window[1], options.get("softcap", 0.0), False
    )
    op_grads = torch.autograd.grad(op_out, (q, k, v), dout)
    assert torch.equal(out, op_out) and torch.equal(lse, op_lse)
    for expected, actual in zip(grads, op_grads):
        _assert_matches(actual, expected, device)


@pytest.mark.parametrize("options", OPTION_SETS, ids=OPTION_IDS)
def test_compile_fullgraph_forward_and_backward(device, options):
    """Traced by dynamo with fullgraph=True (a graph break raises), our op in the graph, the
    backward through the registered autograd; aot_eager keeps the compile quick."""
    graphs = []

    def recording_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return torch._dynamo.lookup_backend("aot_eager")(graph_module, example_inputs)

    def attention(q, k, v):
        return flash_attn_func(q, k, v, **options)

    compiled = torch.compile(attention, fullgraph=True, backend=recording_backend)
    q, k, v = _inputs(device)
    out = compiled(q, k, v)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    eager = attention(q, k, v)
    eager_grads = torch.autograd.grad(eager, (q, k, v), dout)
    assert torch.equal(out, eager)
    for actual, expected in zip(grads, eager_grads):
        _assert_matches(actual, expected, device)
    assert len(graphs) == 1
    targets = [node.target for node in graphs[0].graph.nodes if node.op == "call_function"]
    assert torch.ops.flash_attention_swift.fwd.default in targets or torch.ops.flash_attention_swift.fwd in targets


def test_compile_inductor_transformer_block(device):
    """A small attention block compiled by inductor (fullgraph), forward and one backward,
    against the same block in eager mode."""

    class Block(torch.nn.Module):
        def __init__(self, width=128, heads=4, kv_heads=2):
            super().__init__()
            self.heads, self.kv_heads, self.head_dim = heads, kv_heads, width // heads
            self.qkv = torch.nn.Linear(width, (heads + 2 * kv_heads) * self.head_dim)
            self.proj = torch.nn.Linear(width, width)

        def forward(self, x):
            b, s, _ = x.shape
            qkv = self.qkv(x).view(b, s, self.heads + 2 * self.kv_heads, self.head_dim)
            out = flash_attn_qkvpacked_func(qkv, causal=True, num_heads_q=self.heads)
            return x + self.proj(out.reshape(b, s, -1))

    dtype = _dtype(device)
    block = Block().to(device=device, dtype=dtype)
    x = torch.randn(2, 65, 128, device=device, dtype=dtype, requires_grad=True)
    compiled = torch.compile(block, fullgraph=True)
    out = compiled(x)
    out.square().mean().backward()
    compiled_grads = [x.grad.clone()] + [p.grad.clone() for p in block.parameters()]
    x.grad = None
    block.zero_grad()
    eager = block(x)
    eager.square().mean().backward()
    eager_grads = [x.grad] + [p.grad for p in block.parameters()]
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(out, eager, **tolerance)
    for actual, expected in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(actual, expected, **tolerance)


def test_compile_dynamic_shapes(device):
    compiled = torch.compile(
        lambda q, k, v: flash_attn_func(q, k, v, causal=True), fullgraph=True, dynamic=True, backend="aot_eager"
    )
    for sq, sk in ((17, 33), (40, 29), (5, 5)):
        q, k, v = _inputs(device, sq=sq, sk=sk)
        out = compiled(q, k, v)
        assert torch.equal(out, flash_attn_func(q, k, v, causal=True))
        out.sum().backward()


@pytest.mark.parametrize("options", OPTION_SETS, ids=OPTION_IDS)
def test_opcheck_forward(device, options):
    q, k, v = _inputs(device)
    window = options.get("window_size", (-1, -1))
    arguments = (q, k, v, 0.2, options.get("causal", False), window[0], window[1], options.get("softcap", 0.0), False)
    torch.library.opcheck(torch.ops.flash_attention_swift.fwd.default, arguments)


def test_opcheck_backward(device):
    q, k, v = _inputs(device, requires_grad=False)
    out, lse = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    dout = torch.randn_like(out)
    arguments = (dout, q, k, v, out, lse, 64 ** -0.5, True, -1, -1, 0.0, False)
    torch.library.opcheck(torch.ops.flash_attention_swift.bwd.default, arguments)


def test_cpu_call_releases_the_gil():
    """While one thread is inside a long CPU call, another runs Python code. The switch interval
    is raised to a second, so a call holding the GIL would let the main thread count nothing."""
    q, k, v = reference.random_inputs(1, 4096, 4096, 8, 8, 64, 64, torch.float32, "cpu")
    started, finished = threading.Event(), threading.Event()
    results = {}

    def worker():
        started.set()
        results["out"] = flash_attn_func(q, k, v)
        finished.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        started.wait()
        count = 0
        while not finished.is_set():
            count += 1
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert results["out"].shape == (1, 4096, 8, 64)
    assert count > 10_000, f"the main thread ran only {count} iterations during the call"


def test_concurrent_callers_get_their_own_results(device):
    """Each thread has its own descriptor buffer and error message."""
    problems = [_inputs(device, sq=9 + 8 * i, sk=40 - 3 * i, requires_grad=False) for i in range(6)]
    expected = [flash_attn_func(*p, causal=True) for p in problems]
    results = [None] * len(problems)
    errors = []

    def run(index):
        try:
            for _ in range(5):
                results[index] = flash_attn_func(*problems[index], causal=True)
                with pytest.raises(ValueError, match="k.shape"):
                    flash_attn_func(problems[index][0], problems[index][1][..., :8], problems[index][2])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(problems))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for actual, wanted in zip(results, expected):
        assert torch.equal(actual, wanted)


@needs_cuda
def test_cuda_runs_on_the_current_stream():
    """Inputs written on a side stream and attention queued right after on the same stream: the
    result is right only if the library queued its kernels on torch's current stream."""
    q, k, v = _inputs("cuda", requires_grad=False)
    expected = flash_attn_func(q * 2, k, v, causal=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(20):  # a queue of work ahead of ours on the side stream
            scaled = q * 2
        out = flash_attn_func(scaled, k, v, causal=True)
    side.synchronize()
    assert torch.equal(out, expected)


@needs_cuda
def test_cuda_graph_capture():
    """A call that synchronized the device or used another stream could not be captured."""
    q, k, v = _inputs("cuda", requires_grad=False)
    flash_attn_func(q, k, v, causal=True)  # compile and warm the scratch pool first
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = flash_attn_func(q, k, v, causal=True)
    q.copy_(torch.randn_like(q))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, flash_attn_func(q, k, v, causal=True))


@needs_cuda
def test_cuda_outputs_come_from_the_caching_allocator():
    q, k, v = _inputs("cuda", requires_grad=False)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out, lse = flash_attn_func(q, k, v, return_attn_probs=True)
    assert torch.cuda.memory_allocated() - before >= out.numel() * out.element_size() + lse.numel() * 4


@needs_cuda
def test_cuda_float32_is_refused():
    q, k, v = (t.float() for t in _inputs("cuda", requires_grad=False))
    with pytest.raises(NotImplementedError, match="float32"):
        flash_attn_func(q, k, v)


@needs_cuda
def test_cuda_tensors_on_another_device_than_q():
    if torch.cuda.device_count() < 2:
        q, k, v = _inputs("cuda", requires_grad=False)
        with pytest.raises(ValueError, match="device"):
            flash_attn_func(q, k.cpu(), v)
    else:
        q, k, v = _inputs("cuda", requires_grad=False)
        with pytest.raises(ValueError, match="device"):
            flash_attn_func(q, k.to("cuda:1"), v)


def test_eager_fast_path_is_taken_only_in_plain_eager_mode():
    q, k, v = _inputs("cpu", requires_grad=False)
    assert _ops._plain_eager(q, k, v)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in (q, k, v)]
        assert not _ops._plain_eager(*fake)
        out = flash_attn_func(*fake, causal=True)  # the fake kernel, no library call
        assert out.shape == (2, 33, 4, 32)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_autocast_casts_float32_inputs_like_sdpa(device, compiled):
    q, k, v = (t.float().detach().requires_grad_() for t in _inputs(device))
    dtype = torch.bfloat16

    def attention(q, k, v):
        return flash_attn_func(q, k, v, causal=True)

    run = torch.compile(attention, fullgraph=True, backend="aot_eager") if compiled else attention
    with torch.autocast(device, dtype=dtype):
        out = run(q, k, v)
    assert out.dtype == dtype
    assert torch.equal(out, flash_attn_func(q.to(dtype), k.to(dtype), v.to(dtype), causal=True))
    out.float().sum().backward()
    assert q.grad.dtype == torch.float32 and torch.isfinite(q.grad).all()
