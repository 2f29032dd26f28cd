"""FlashAttention-3's interface: signatures, return conventions, packed variants, strided inputs
without copies, arguments that are not supported yet, and bad inputs (a Python exception with
the library's message, never a crash)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import flash_attention_swift as fas
from flash_attention_swift import (
    flash_attn_combine,
    flash_attn_func,
    flash_attn_kvpacked_func,
    flash_attn_qkvpacked_func,
    flash_attn_varlen_func,
    flash_attn_with_kvcache,
)

import reference

# FlashAttention-3's hopper/flash_attn_interface.py (the parameters in order, with defaults).
FA3_SIGNATURES = {
    "flash_attn_func": [
        ("q", inspect.Parameter.empty), ("k", inspect.Parameter.empty), ("v", inspect.Parameter.empty),
        ("softmax_scale", None), ("causal", False), ("qv", None), ("q_descale", None), ("k_descale", None),
        ("v_descale", None), ("window_size", (-1, -1)), ("attention_chunk", 0), ("softcap", 0.0),
        ("num_splits", 1), ("pack_gqa", None), ("deterministic", False), ("sm_margin", 0),
        ("return_attn_probs", False),
    ],
    "flash_attn_qkvpacked_func": [
        ("qkv", inspect.Parameter.empty), ("softmax_scale", None), ("causal", False), ("q_descale", None),
        ("k_descale", None), ("v_descale", None), ("window_size", (-1, -1)), ("attention_chunk", 0),
        ("softcap", 0.0), ("deterministic", False), ("num_heads_q", None), ("sm_margin", 0),
        ("return_attn_probs", False),
    ],
    "flash_attn_varlen_func": [
        ("q", inspect.Parameter.empty), ("k", inspect.Parameter.empty), ("v", inspect.Parameter.empty),
        ("cu_seqlens_q", inspect.Parameter.empty), ("cu_seqlens_k", inspect.Parameter.empty),
        ("max_seqlen_q", inspect.Parameter.empty), ("max_seqlen_k", inspect.Parameter.empty),
        ("seqused_q", None), ("seqused_k", None), ("softmax_scale", None), ("causal", False), ("qv", None),
        ("q_descale", None), ("k_descale", None), ("v_descale", None), ("window_size", (-1, -1)),
        ("attention_chunk", 0), ("softcap", 0.0), ("num_splits", 1), ("pack_gqa", None),
        ("deterministic", False), ("sm_margin", 0), ("return_attn_probs", False),
    ],
}
FA3_KVCACHE = [
    ("q", inspect.Parameter.empty), ("k_cache", inspect.Parameter.empty), ("v_cache", inspect.Parameter.empty),
    ("k", None), ("v", None), ("qv", None), ("rotary_cos", None), ("rotary_sin", None), ("cache_seqlens", None),
    ("cache_batch_idx", None), ("cache_leftpad", None), ("page_table", None), ("cu_seqlens_q", None),
    ("cu_seqlens_k_new", None), ("max_seqlen_q", None), ("rotary_seqlens", None), ("q_descale", None),
    ("k_descale", None), ("v_descale", None), ("softmax_scale", None), ("causal", False), ("window_size", (-1, -1)),
    ("attention_chunk", 0), ("softcap", 0.0), ("rotary_interleaved", True), ("scheduler_metadata", None),
    ("num_splits", 0), ("pack_gqa", None), ("sm_margin", 0), ("return_softmax_lse", False),
]
# FlashAttention-2's flash_attn/flash_attn_interface.py (FA3 has no kvpacked function).
FA2_KVPACKED = [
    ("q", inspect.Parameter.empty), ("kv", inspect.Parameter.empty), ("dropout_p", 0.0), ("softmax_scale", None),
    ("causal", False), ("window_size", (-1, -1)), ("softcap", 0.0), ("alibi_slopes", None),
    ("deterministic", False), ("return_attn_probs", False),
]


@pytest.mark.parametrize("name", sorted(FA3_SIGNATURES))
def test_signature_is_flash_attention_3s(name):
    parameters = [
        (p.name, p.default)
        for p in inspect.signature(getattr(fas, name)).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert parameters == FA3_SIGNATURES[name]


def test_kvpacked_signature_is_flash_attention_2s():
    parameters = [(p.name, p.default) for p in inspect.signature(flash_attn_kvpacked_func).parameters.values()]
    assert parameters == FA2_KVPACKED


def test_kvcache_and_combine_signatures_are_flash_attention_3s():
    assert [(p.name, p.default) for p in inspect.signature(flash_attn_with_kvcache).parameters.values()] == FA3_KVCACHE
    assert [(p.name, p.default) for p in inspect.signature(flash_attn_combine).parameters.values()] == [
        ("out_partial", inspect.Parameter.empty), ("lse_partial", inspect.Parameter.empty), ("out", None), ("out_dtype", None),
    ]


def inputs(device, dtype=torch.float32, batch=2, sq=17, sk=33, hq=4, hkv=2, d=64, dv=64):
    return reference.random_inputs(batch, sq, sk, hq, hkv, d, dv, dtype, device)


def test_returns_out_or_out_and_lse(device):
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    q, k, v = inputs(device, dtype)
    out = flash_attn_func(q, k, v, causal=True)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 17, 4, 64) and out.dtype == dtype
    both = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    assert isinstance(both, tuple) and len(both) == 2
    out2, lse = both
    assert torch.equal(out, out2)
    assert lse.shape == (2, 4, 17) and lse.dtype == torch.float32 and lse.device == q.device


def test_default_scale_and_explicit_scale(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = inputs(device, dtype)
    default = flash_attn_func(q, k, v)
    explicit = flash_attn_func(q, k, v, softmax_scale=64 ** -0.5)
    assert torch.equal(default, explicit)
    other = flash_attn_func(q, k, v, softmax_scale=0.3)
    expected, _ = reference.attention(q, k, v, scale=0.3)
    reference.check("out", other.float(), expected, None if dtype == torch.float32 else reference.attention(q, k, v, scale=0.3, compute_dtype=dtype)[0])


def test_qkvpacked_matches_unpacked(device):
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    qkv = torch.randn(2, 33, 3, 4, 64, device=device).to(dtype).requires_grad_()
    out, lse = flash_attn_qkvpacked_func(qkv, causal=True, return_attn_probs=True)
    q, k, v = (t.detach().clone().requires_grad_() for t in qkv.unbind(2))
    expected, expected_lse = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    assert torch.equal(out, expected) and torch.equal(lse, expected_lse)
    dout = torch.randn_like(out)
    (dqkv,) = torch.autograd.grad(out, qkv, dout)
    grads = torch.autograd.grad(expected, (q, k, v), dout)
    assert torch.equal(dqkv, torch.stack(grads, dim=2))


def test_qkvpacked_four_dimensional_gqa(device):
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    qkv = torch.randn(2, 17, 6 + 2 * 2, 64, device=device).to(dtype)
    out = flash_attn_qkvpacked_func(qkv, num_heads_q=6)
    q, k, v = qkv.split([6, 2, 2], dim=2)
    assert torch.equal(out, flash_attn_func(q, k, v))
    with pytest.raises(ValueError, match="num_heads_q"):
        flash_attn_qkvpacked_func(qkv)
    with pytest.raises(ValueError, match="heads"):
        flash_attn_qkvpacked_func(qkv, num_heads_q=5)


def test_kvpacked_matches_unpacked(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q = torch.randn(2, 17, 4, 64, device=device).to(dtype)
    kv = torch.randn(2, 33, 2, 2, 64, device=device).to(dtype)
    out, lse = flash_attn_kvpacked_func(q, kv, causal=True, return_attn_probs=True)
    expected, expected_lse = flash_attn_func(q, *kv.unbind(2), causal=True, return_attn_probs=True)
    assert torch.equal(out, expected) and torch.equal(lse, expected_lse)


def test_strided_views_go_in_without_copies(device, monkeypatch):
    """Views with a unit last stride (packed QKV, transposed heads) reach the library as they
    are: no .contiguous() anywhere in the forward or the backward."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    qkv = torch.randn(2, 33, 3, 4, 64, device=device).to(dtype).requires_grad_()
    kv_heads_first = torch.randn(2, 2, 2, 33, 64, device=device).to(dtype)  # (kv, b, h, s, d)
    q = qkv[:, :, 0]
    k = kv_heads_first[0].transpose(1, 2).requires_grad_()
    v = kv_heads_first[1].transpose(1, 2)
    assert not q.is_contiguous() and not k.is_contiguous()
    calls = []
    original = torch.Tensor.contiguous

    def counting(self, *args, **kwargs):
        calls.append(tuple(self.shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "contiguous", counting)
    out = flash_attn_func(q, k, v, causal=True)
    out.backward(torch.randn_like(out))
    monkeypatch.undo()
    assert calls == []
    expected, _ = reference.attention(q.detach(), k.detach(), v, causal=True)
    same = None if dtype == torch.float32 else reference.attention(q.detach(), k.detach(), v, causal=True, compute_dtype=dtype)[0]
    reference.check("out", out.detach(), expected, same)


def test_last_stride_not_one_is_copied_and_correct(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = inputs(device, dtype)
    q_strided = q.transpose(2, 3).contiguous().transpose(2, 3)  # last stride = heads
    assert q_strided.stride(-1) != 1
    assert torch.equal(flash_attn_func(q_strided, k, v), flash_attn_func(q, k, v))


def test_empty_sequences(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = inputs(device, dtype, sq=0)
    out, lse = flash_attn_func(q, k, v, return_attn_probs=True)
    assert out.shape == (2, 0, 4, 64) and lse.shape == (2, 4, 0)
    q, k, v = inputs(device, dtype, sk=0)
    out, lse = flash_attn_func(q, k, v, return_attn_probs=True)
    assert (out == 0).all() and torch.isneginf(lse).all()


def test_lse_has_no_gradient(device):
    """FlashAttention's backward ignores gradients of the LSE; here the LSE is marked
    non-differentiable so a loss through it fails instead of getting a wrong gradient."""
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = (t.requires_grad_() for t in inputs(device, dtype))
    out, lse = flash_attn_func(q, k, v, return_attn_probs=True)
    assert out.requires_grad and not lse.requires_grad
    with pytest.raises(RuntimeError):
        lse.sum().backward()


def test_no_grad_and_inference_mode(device):
    dtype = torch.float32 if device == "cpu" else torch.float16
    q, k, v = (t.requires_grad_() for t in inputs(device, dtype))
    with torch.no_grad():
        out = flash_attn_func(q, k, v)
    assert not out.requires_grad
    with torch.inference_mode():
        out2 = flash_attn_func(q, k, v)
    assert torch.equal(out, out2)


UNSUPPORTED = [
    ("qv", lambda q: dict(qv=q)),
    # q_descale/k_descale/v_descale select the fp8 path (test_fp8.py: refused for other dtypes).
    ("attention_chunk", lambda q: dict(attention_chunk=128)),
    ("sm_margin", lambda q: dict(sm_margin=8)),
]


@pytest.mark.parametrize("name, arguments", UNSUPPORTED, ids=[name for name, _ in UNSUPPORTED])
def test_unsupported_argument_raises_naming_it(name, arguments):
    q, k, v = inputs("cpu")
    with pytest.raises(NotImplementedError, match=name):
        flash_attn_func(q, k, v, **arguments(q))


def test_kvpacked_and_qkvpacked_pass_dropout_and_alibi_through():
    q, k, v = inputs("cpu")
    heads = q.shape[2]
    slopes = torch.rand(heads)
    kv = torch.stack((k, v), dim=2)
    expected = flash_attn_func(q, k, v, alibi_slopes=slopes)
    assert torch.equal(flash_attn_kvpacked_func(q, kv, alibi_slopes=slopes), expected)
    torch.manual_seed(5)
    dropped = flash_attn_func(q, k, v, dropout_p=0.3)
    torch.manual_seed(5)
    assert torch.equal(flash_attn_kvpacked_func(q, kv, 0.3), dropped)
    if q.shape == k.shape == v.shape:
        qkv = torch.stack((q, k, v), dim=2)
        torch.manual_seed(5)
        assert torch.equal(flash_attn_qkvpacked_func(qkv, dropout_p=0.3), dropped)


def test_scheduling_hints_are_accepted():
    q, k, v = inputs("cpu")
    expected = flash_attn_func(q, k, v)
    assert torch.equal(flash_attn_func(q, k, v, num_splits=4, pack_gqa=True), expected)
    assert torch.equal(flash_attn_func(q, k, v, num_splits=0, pack_gqa=False), expected)
    with pytest.raises(ValueError, match="num_splits"):
        flash_attn_func(q, k, v, num_splits=-1)


def _bad(**changes):
    q, k, v = inputs("cpu")
    arguments = dict(q=q, k=k, v=v)
    arguments.update(changes)
    return arguments


BAD_INPUTS = [
    ("q rank 3", ValueError, "q must have 4 dimensions", lambda: _bad(q=torch.randn(2, 17, 64))),
    ("k rank 5", ValueError, "k must have 4 dimensions", lambda: _bad(k=torch.randn(2, 33, 2, 64, 1))),
    ("heads not a multiple", ValueError, "heads", lambda: _bad(k=torch.randn(2, 33, 3, 64), v=torch.randn(2, 33, 3, 64))),
    ("k and v lengths", ValueError, r"v\.shape\[1\]", lambda: _bad(v=torch.randn(2, 31, 2, 64))),
    ("head_dim of k", ValueError, r"k\.shape\[3\]", lambda: _bad(k=torch.randn(2, 33, 2, 32))),
    ("batch of k", ValueError, r"k\.shape\[0\]", lambda: _bad(k=torch.randn(3, 33, 2, 64))),
    ("dtypes differ", ValueError, r"k\.dtype", lambda: _bad(k=torch.randn(2, 33, 2, 64).half())),
    ("float64", TypeError, "float64", lambda: _bad(q=torch.randn(2, 17, 4, 64, dtype=torch.float64))),
    ("int32", TypeError, "int32", lambda: _bad(v=torch.ones(2, 33, 2, 64, dtype=torch.int32))),
    ("not a tensor", TypeError, "q must be a torch.Tensor", lambda: _bad(q=[[1.0]])),
    ("meta device", ValueError, "meta", lambda: _bad(k=torch.empty(2, 33, 2, 64, device="meta"))),
    ("window of three", ValueError, "window_size", lambda: _bad(window_size=(1, 2, 3))),
    ("window of floats", TypeError, "window_size", lambda: _bad(window_size=("a", 2))),
    ("softcap negative", ValueError, "softcap", lambda: _bad(softcap=-1.0)),
    ("softcap nan", ValueError, "softcap", lambda: _bad(softcap=math.nan)),
    ("softcap inf", ValueError, "softcap", lambda: _bad(softcap=math.inf)),
    ("scale zero", ValueError, "softmax_scale", lambda: _bad(softmax_scale=0.0)),
    ("scale nan", ValueError, "softmax_scale", lambda: _bad(softmax_scale=math.nan)),
    ("scale negative", ValueError, "softmax_scale", lambda: _bad(softmax_scale=-0.5)),
    ("scale too large", ValueError, "softmax_scale", lambda: _bad(softmax_scale=1e300)),
    ("window beyond int64", ValueError, "window_size", lambda: _bad(window_size=(2**70, 0))),
]


@pytest.mark.parametrize("exception, message, arguments", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_with_the_message(exception, message, arguments):
    with pytest.raises(exception, match=message):
        flash_attn_func(**arguments())


OP_PATH_CASES = [c for c in BAD_INPUTS if c[0] not in ("not a tensor", "window of three", "window of floats", "scale zero", "window beyond int64")]


@pytest.mark.parametrize("exception, message, arguments", [c[1:] for c in OP_PATH_CASES], ids=[c[0] for c in OP_PATH_CASES])
def test_bad_input_through_the_registered_op(exception, message, arguments):
    """The same refusals when the call goes through torch.ops (the path torch.compile takes).
    (flash_attn_func itself refuses a scale of 0, which the op reads as the default.)"""
    a = arguments()
    scale = float(a.get("softmax_scale", 0.125))
    softcap = float(a.get("softcap", 0.0))
    with pytest.raises(exception, match=message):
        torch.ops.flash_attention_swift.fwd(a["q"], a["k"], a["v"], scale, False, -1, -1, softcap, False)


def test_remembered_descriptors_follow_every_change(device):
    """The per-thread descriptors are reused while shapes, strides, dtypes and options repeat;
    any change, a failed call in between, or an input that must be copied again each time must
    still give the result of a fresh call."""
    dtype = torch.float32 if device == "cpu" else torch.float16
    small = inputs(device, dtype, sq=9, sk=21)
    large = inputs(device, dtype, sq=33, sk=40, hq=6, hkv=3, dv=32)
    padded = [torch.nn.functional.pad(t, (0, 8))[..., : t.shape[-1]] for t in small]
    last_stride = [t.transpose(2, 3).contiguous().transpose(2, 3) for t in small]

    def expected(q, k, v, **options):
        out, _ = reference.attention(q, k, v, **{("window" if key == "window_size" else key): value for key, value in options.items()})
        same = None if dtype == torch.float32 else reference.attention(
            q, k, v, compute_dtype=dtype, **{("window" if key == "window_size" else key): value for key, value in options.items()}
        )[0]
        return out, same

    sequence = [
        (small, {}), (small, {}), (large, {}), (small, dict(causal=True)), (padded, dict(causal=True)),
        (last_stride, {}), (last_stride, {}), (small, dict(softcap=5.0)), (large, dict(window_size=(4, 2))),
        (small, {}),
    ]
    for index, (tensors, options) in enumerate(sequence):
        if index == 5:  # a refused call between two good ones
            with pytest.raises(ValueError):
                flash_attn_func(small[0], large[1], large[2])
        out = flash_attn_func(*tensors, **options)
        reference.check(f"call {index}", out, *expected(*[t.contiguous() for t in tensors], **options))
