"""flash_attn_varlen_func and flash_attn_with_kvcache at the edge: return conventions, arguments
that are not supported (NotImplementedError naming them), and bad inputs (ValueError or
TypeError with the library's message naming the argument and entry, never a crash, and a
refused call leaves the cache untouched)."""

from __future__ import annotations

import math

import pytest
import torch

from flash_attention_swift import flash_attn_varlen_func, flash_attn_with_kvcache

I32 = torch.int32


def varlen_arguments(**changes):
    """A valid packed batch of lengths (3, 0, 5), then `changes` applied."""
    arguments = dict(
        q=torch.randn(8, 4, 64), k=torch.randn(8, 2, 64), v=torch.randn(8, 2, 64),
        cu_seqlens_q=torch.tensor([0, 3, 3, 8], dtype=I32), cu_seqlens_k=torch.tensor([0, 3, 3, 8], dtype=I32),
        max_seqlen_q=5, max_seqlen_k=5,
    )
    arguments.update(changes)
    return arguments


def kvcache_arguments(**changes):
    """A valid paged decode step: 2 sequences with 4 and 2 cached tokens, page size 3, one new token."""
    arguments = dict(
        q=torch.randn(2, 1, 4, 64), k_cache=torch.randn(5, 3, 2, 64), v_cache=torch.randn(5, 3, 2, 64),
        k=torch.randn(2, 1, 2, 64), v=torch.randn(2, 1, 2, 64), cache_seqlens=torch.tensor([4, 2], dtype=I32),
        page_table=torch.tensor([[3, 0], [4, 1]], dtype=I32),
    )
    arguments.update(changes)
    return arguments


def test_varlen_returns_out_or_out_and_lse():
    arguments = varlen_arguments()
    out = flash_attn_varlen_func(**arguments)
    assert isinstance(out, torch.Tensor) and out.shape == (8, 4, 64)
    both = flash_attn_varlen_func(**arguments, return_attn_probs=True)
    assert isinstance(both, tuple) and len(both) == 2
    assert torch.equal(both[0], out) and both[1].shape == (4, 8) and both[1].dtype == torch.float32


def test_varlen_positional_order_is_flash_attention_3s():
    a = varlen_arguments()
    used = torch.tensor([3, 0, 2], dtype=I32)
    positional = flash_attn_varlen_func(
        a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"], 5, 5, used, None, 0.3, True
    )
    keyword = flash_attn_varlen_func(**a, seqused_q=used, softmax_scale=0.3, causal=True)
    assert torch.equal(positional, keyword)


def test_kvcache_returns_out_or_fa3_tuple():
    out = flash_attn_with_kvcache(**kvcache_arguments())
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 4, 64)
    result = flash_attn_with_kvcache(**kvcache_arguments(), return_softmax_lse=True)
    assert isinstance(result, tuple) and len(result) == 4
    out, lse, out_accum, lse_accum = result
    assert lse.shape == (2, 4, 1) and lse.dtype == torch.float32
    assert out_accum.numel() == 0 and lse_accum.numel() == 0


def test_scheduling_hints_do_not_change_the_result():
    packed = varlen_arguments()
    expected = flash_attn_varlen_func(**packed)
    assert torch.equal(flash_attn_varlen_func(**packed, num_splits=4, pack_gqa=True), expected)
    a = kvcache_arguments(k=None, v=None)
    expected = flash_attn_with_kvcache(**a)
    for splits in (1, 2, 7):
        torch.testing.assert_close(flash_attn_with_kvcache(**a, num_splits=splits, pack_gqa=False), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(flash_attn_with_kvcache(**a, rotary_interleaved=False), expected)


VARLEN_UNSUPPORTED = [
    ("qv", dict(qv=torch.randn(8, 4, 64))),
    ("q_descale", dict(q_descale=torch.ones(1))),
    ("attention_chunk", dict(attention_chunk=64)),
    ("sm_margin", dict(sm_margin=4)),
]
KVCACHE_UNSUPPORTED = [
    ("qv", dict(qv=torch.randn(2, 1, 4, 64))),
    ("rotary_cos", dict(rotary_cos=torch.ones(8, 16))),
    ("rotary_sin", dict(rotary_sin=torch.ones(8, 16))),
    ("cache_leftpad", dict(cache_leftpad=torch.zeros(2, dtype=I32))),
    ("cu_seqlens_q", dict(cu_seqlens_q=torch.tensor([0, 1, 2], dtype=I32))),
    ("cu_seqlens_k_new", dict(cu_seqlens_k_new=torch.tensor([0, 1, 2], dtype=I32))),
    ("max_seqlen_q", dict(max_seqlen_q=1)),
    ("rotary_seqlens", dict(rotary_seqlens=torch.zeros(2, dtype=I32))),
    ("k_descale", dict(k_descale=torch.ones(1))),
    ("scheduler_metadata", dict(scheduler_metadata=torch.zeros(4, dtype=I32))),
    ("attention_chunk", dict(attention_chunk=64)),
    ("sm_margin", dict(sm_margin=4)),
]


@pytest.mark.parametrize("name, changes", VARLEN_UNSUPPORTED, ids=[c[0] for c in VARLEN_UNSUPPORTED])
def test_varlen_unsupported_argument_raises_naming_it(name, changes):
    with pytest.raises(NotImplementedError, match=name):
        flash_attn_varlen_func(**varlen_arguments(**changes))


@pytest.mark.parametrize("name, changes", KVCACHE_UNSUPPORTED, ids=[c[0] for c in KVCACHE_UNSUPPORTED])
def test_kvcache_unsupported_argument_raises_naming_it(name, changes):
    arguments = kvcache_arguments(**changes)
    before = arguments["k_cache"].clone()
    with pytest.raises(NotImplementedError, match=name):
        flash_attn_with_kvcache(**arguments)
    assert torch.equal(arguments["k_cache"], before)


VARLEN_BAD = [
    ("cu_seqlens_q first not 0", ValueError, r"cu_seqlens_q\[0\]", dict(cu_seqlens_q=torch.tensor([1, 3, 3, 8], dtype=I32))),
    ("cu_seqlens_k decreasing", ValueError, r"cu_seqlens_k\[2\]", dict(cu_seqlens_k=torch.tensor([0, 3, 2, 8], dtype=I32))),
    ("cu_seqlens past the rows", ValueError, r"cu_seqlens_q\[3\].*rows", dict(cu_seqlens_q=torch.tensor([0, 3, 3, 9], dtype=I32), max_seqlen_q=6)),
    ("length over max_seqlen", ValueError, r"cu_seqlens_k\[3\].*max_seqlen", dict(max_seqlen_k=4)),
    ("negative max_seqlen", ValueError, "max_seqlen_q", dict(max_seqlen_q=-1)),
    ("float max_seqlen", TypeError, "max_seqlen_q", dict(max_seqlen_q=5.0)),
    ("batch sizes differ", ValueError, r"cu_seqlens_k\.shape", dict(cu_seqlens_k=torch.tensor([0, 3, 8], dtype=I32))),
    ("int64 cu_seqlens", TypeError, "cu_seqlens_q must be torch.int32", dict(cu_seqlens_q=torch.tensor([0, 3, 3, 8]))),
    ("cu_seqlens a list", TypeError, "cu_seqlens_k must be a torch.int32 tensor", dict(cu_seqlens_k=[0, 3, 3, 8])),
    ("cu_seqlens 2-D", ValueError, "cu_seqlens_q must have 1 dimension", dict(cu_seqlens_q=torch.zeros(1, 4, dtype=I32))),
    ("seqused over the length", ValueError, r"seqused_q\[0\]", dict(seqused_q=torch.tensor([4, 0, 5], dtype=I32))),
    ("seqused negative", ValueError, r"seqused_k\[2\]", dict(seqused_k=torch.tensor([1, 0, -1], dtype=I32))),
    ("seqused wrong batch", ValueError, r"seqused_k\.shape", dict(seqused_k=torch.tensor([1, 0], dtype=I32))),
    ("q rank 4", ValueError, "q must have 3 dimensions", dict(q=torch.randn(1, 8, 4, 64))),
    ("k and v rows differ", ValueError, r"v\.shape\[0\]", dict(v=torch.randn(9, 2, 64))),
    ("head dims differ", ValueError, r"k\.shape\[2\]", dict(k=torch.randn(8, 2, 32))),
    ("heads not a multiple", ValueError, "heads", dict(k=torch.randn(8, 3, 64), v=torch.randn(8, 3, 64))),
    ("dtypes differ", ValueError, r"k\.dtype", dict(k=torch.randn(8, 2, 64).half())),
    ("index on meta", ValueError, "cu_seqlens_k is on meta", dict(cu_seqlens_k=torch.empty(4, dtype=I32, device="meta"))),
    ("window of three", ValueError, "window_size", dict(window_size=(1, 2, 3))),
    ("softcap negative", ValueError, "softcap", dict(softcap=-1.0)),
]


@pytest.mark.parametrize("exception, message, changes", [c[1:] for c in VARLEN_BAD], ids=[c[0] for c in VARLEN_BAD])
def test_varlen_bad_input_raises_with_the_message(exception, message, changes):
    with pytest.raises(exception, match=message):
        flash_attn_varlen_func(**varlen_arguments(**changes))


def test_varlen_bad_input_in_the_backward_and_through_the_op():
    a = varlen_arguments(q=torch.randn(8, 4, 64, requires_grad=True))
    bad = torch.tensor([0, 3, 2, 8], dtype=I32)
    with pytest.raises(ValueError, match=r"cu_seqlens_q\[2\]"):
        torch.ops.flash_attention_swift.varlen_fwd(
            a["q"], a["k"], a["v"], bad, a["cu_seqlens_k"], None, None, 5, 5, 0.125, False, -1, -1, 0.0, False
        )
    out = flash_attn_varlen_func(**a)
    with pytest.raises(ValueError, match=r"cu_seqlens_k\[2\]"):
        torch.ops.flash_attention_swift.varlen_bwd(
            out, a["q"], a["k"], a["v"], out, torch.zeros(4, 8), a["cu_seqlens_q"], bad, None, None, 5, 5,
            0.125, False, -1, -1, 0.0, False,
        )


KVCACHE_BAD = [
    ("page out of range", ValueError, r"page_table\[1, 0\]", dict(page_table=torch.tensor([[3, 0], [5, 1]], dtype=I32))),
    ("negative page", ValueError, r"page_table\[0, 1\]", dict(page_table=torch.tensor([[3, -1], [4, 1]], dtype=I32))),
    ("cache overflow", ValueError, r"cache_seqlens\[0\]", dict(cache_seqlens=torch.tensor([6, 2], dtype=I32))),
    ("negative cache_seqlens", ValueError, r"cache_seqlens\[1\]", dict(cache_seqlens=torch.tensor([1, -2], dtype=I32))),
    ("int cache_seqlens overflow", ValueError, r"cache_seqlens\[0\]", dict(cache_seqlens=6)),
    ("int cache_seqlens negative", ValueError, "cache_seqlens", dict(cache_seqlens=-1)),
    ("cache_seqlens float", TypeError, "cache_seqlens", dict(cache_seqlens=2.0)),
    ("cache_seqlens int64", TypeError, "cache_seqlens must be torch.int32", dict(cache_seqlens=torch.tensor([4, 2]))),
    ("cache_seqlens wrong batch", ValueError, r"cache_seqlens\.shape", dict(cache_seqlens=torch.tensor([4], dtype=I32))),
    ("page_table wrong batch", ValueError, r"page_table\.shape", dict(page_table=torch.tensor([[3, 0]], dtype=I32))),
    ("page_table 1-D", ValueError, "page_table must have 2 dimensions", dict(page_table=torch.tensor([3, 0], dtype=I32))),
    ("batch_idx with pages", ValueError, "cache_batch_idx", dict(cache_batch_idx=torch.tensor([0, 1], dtype=I32))),
    ("k without v", ValueError, "v", dict(v=None)),
    ("k with the wrong heads", ValueError, r"k\.shape", dict(k=torch.randn(2, 1, 1, 64))),
    ("v_cache head count", ValueError, r"v_cache\.shape", dict(v_cache=torch.randn(5, 3, 1, 64))),
    ("cache dtype", ValueError, r"k_cache\.dtype", dict(k_cache=torch.randn(5, 3, 2, 64).bfloat16())),
    ("cache last stride", ValueError, "k_cache must have a unit last stride", dict(k_cache=torch.randn(5, 3, 64, 2).transpose(2, 3))),
    ("q rank 3", ValueError, "q must have 4 dimensions", dict(q=torch.randn(2, 4, 64))),
    ("num_splits negative", ValueError, "num_splits", dict(num_splits=-1)),
    ("no cache_seqlens with k", ValueError, "cache_seqlens is required", dict(cache_seqlens=None)),
]


@pytest.mark.parametrize("exception, message, changes", [c[1:] for c in KVCACHE_BAD], ids=[c[0] for c in KVCACHE_BAD])
def test_kvcache_bad_input_raises_and_leaves_the_cache(exception, message, changes):
    arguments = kvcache_arguments(**changes)
    before = [arguments[name].clone() for name in ("k_cache", "v_cache")]
    with pytest.raises(exception, match=message):
        flash_attn_with_kvcache(**arguments)
    for name, saved in zip(("k_cache", "v_cache"), before):
        assert torch.equal(arguments[name], saved), f"{name} was written by a refused call"


def test_kvcache_contiguous_bad_batch_index():
    arguments = kvcache_arguments(
        k_cache=torch.randn(3, 8, 2, 64), v_cache=torch.randn(3, 8, 2, 64), page_table=None,
        cache_batch_idx=torch.tensor([2, 3], dtype=I32),
    )
    before = arguments["k_cache"].clone()
    with pytest.raises(ValueError, match=r"cache_batch_idx\[1\]"):
        flash_attn_with_kvcache(**arguments)
    assert torch.equal(arguments["k_cache"], before)
    with pytest.raises(ValueError, match=r"cache_batch_idx\.shape"):
        flash_attn_with_kvcache(**{**arguments, "cache_batch_idx": torch.tensor([0], dtype=I32)})


def test_kvcache_nan_in_a_slot_that_is_read_shows():
    """The premise of the NaN-filled caches in test_kvcache: a NaN value in a slot the attention
    reads reaches the output (a NaN key would too, as a wrong result)."""
    arguments = kvcache_arguments(v=torch.full((2, 1, 2, 64), math.nan))
    out = flash_attn_with_kvcache(**arguments)
    assert torch.isnan(out).all()
