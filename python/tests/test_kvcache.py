"""flash_attn_with_kvcache: contiguous and paged caches (page sizes 1, 3, 16, 256), new keys and
values appended in place, cache_batch_idx, several query tokens, causal / window / softcap, GQA,
against a float64 attention over each sequence's keys, with FlashAttention's pass rule. Every
cache slot past a sequence's keys and every page no sequence references holds NaN, so a read of
one shows in the output. The CPU grid runs here; the CUDA grid with `pytest -k cuda`."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest
import torch

from flash_attention_swift import flash_attn_func, flash_attn_with_kvcache

import reference
from conftest import needs_cuda


@dataclass(frozen=True)
class Case:
    dtype: torch.dtype
    cache: str  # "contiguous", "batch_idx" (contiguous with cache_batch_idx) or "paged<size>"
    lengths: tuple = (0, 1, 17, 300)  # tokens cached per sequence before the call
    new_tokens: int = 0
    seqlen_q: int = 1
    heads_q: int = 4
    heads_kv: int = 2
    head_dim: int = 64
    head_dim_v: int = 64
    causal: bool = False
    window: tuple = (-1, -1)
    softcap: float = 0.0
    num_splits: int = 0

    @property
    def page_size(self) -> int | None:
        return int(self.cache.removeprefix("paged")) if self.cache.startswith("paged") else None

    def id(self, device: str) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (
            f"{device}-{dtype}-{self.cache}-L{'_'.join(map(str, self.lengths))}-new{self.new_tokens}-sq{self.seqlen_q}"
            f"-h{self.heads_q}x{self.heads_kv}-d{self.head_dim}x{self.head_dim_v}"
            f"{'-causal' if self.causal else ''}-w{self.window[0]}_{self.window[1]}-cap{self.softcap:g}-splits{self.num_splits}"
        )


CACHES = ("contiguous", "batch_idx", "paged1", "paged3", "paged16", "paged256")


def cpu_cases() -> list[Case]:
    cases = [
        Case(dtype, cache, new_tokens=new, seqlen_q=sq, causal=causal)
        for dtype, cache, new, sq, causal in itertools.product(
            (torch.float32, torch.bfloat16), CACHES, (0, 2), (1, 3), (False, True)
        )
    ]
    for cache in ("contiguous", "paged3"):
        cases += [
            Case(torch.float16, cache, new_tokens=1, seqlen_q=1, causal=True),
            Case(torch.float32, cache, new_tokens=3, seqlen_q=3, heads_q=6, heads_kv=2, head_dim=40, head_dim_v=72,
                 causal=True, window=(8, -1), softcap=10.0),
            Case(torch.bfloat16, cache, new_tokens=0, seqlen_q=4, heads_q=3, heads_kv=1, window=(5, 2)),
            Case(torch.float32, cache, lengths=(0, 0), new_tokens=0, seqlen_q=2, causal=True),  # no keys at all
        ]
    for splits in (1, 3, 16):
        cases.append(Case(torch.float32, "paged16", new_tokens=1, causal=True, num_splits=splits))
    return cases


def cuda_cases() -> list[Case]:
    cases = []
    lengths = (0, 1, 17, 300, 1000, 4099)
    for dtype, cache, new, sq, (hq, hkv), d in itertools.product(
        (torch.float16, torch.bfloat16), CACHES + ("paged64",), (0, 1, 4), (1, 4), ((8, 8), (32, 8)), (64, 128, 256)
    ):
        cases.append(Case(dtype, cache, lengths, new, sq, hq, hkv, d, d, causal=True))
    for dtype, cache, splits in itertools.product((torch.float16, torch.bfloat16), ("contiguous", "paged1", "paged16"), (0, 1, 3, 32)):
        cases.append(Case(dtype, cache, lengths, 1, 1, 32, 8, 128, 128, causal=True, num_splits=splits))
    for dtype, cache in itertools.product((torch.float16, torch.bfloat16), ("contiguous", "paged3")):
        cases.append(Case(dtype, cache, lengths, 2, 3, 8, 2, 128, 128, causal=True, window=(64, -1), softcap=30.0))
        cases.append(Case(dtype, cache, lengths, 0, 5, 8, 2, 192, 128, window=(5, 2)))
    return cases


def _params():
    params = [pytest.param("cpu", case, id=case.id("cpu")) for case in cpu_cases()]
    params += [pytest.param("cuda", case, id=case.id("cuda"), marks=needs_cuda) for case in cuda_cases()]
    return params


@dataclass
class Cache:
    """A cache built from each sequence's logical keys and values, and where each token lives."""

    k_cache: torch.Tensor
    v_cache: torch.Tensor
    cache_batch_idx: torch.Tensor | None
    page_table: torch.Tensor | None
    slots: list  # slots[b][t] = index of token t of sequence b in the cache flattened to (rows * capacity)


def build_cache(case: Case, keys, values, device, *, extra_rows: int = 2, extra_pages: int = 3) -> Cache:
    """The cached part of keys[b] / values[b] (the first case.lengths[b] tokens) written into a
    NaN-filled cache; slots for the new tokens are reserved but hold NaN too."""
    batch = len(case.lengths)
    needed = [length + case.new_tokens for length in case.lengths]
    page_size = case.page_size
    if page_size is None:
        capacity = max(needed, default=0) + 3
        rows = batch + extra_rows if case.cache == "batch_idx" else batch
        order = torch.randperm(rows)[:batch] if case.cache == "batch_idx" else torch.arange(batch)
        slots = [[int(order[b]) * capacity + t for t in range(needed[b])] for b in range(batch)]
        blocks, block_size = rows, capacity
        cache_batch_idx = order.to(torch.int32).to(device) if case.cache == "batch_idx" else None
        page_table = None
    else:
        pages_per_sequence = [math.ceil(n / page_size) for n in needed]
        num_pages = sum(pages_per_sequence) + extra_pages
        shuffled = torch.randperm(num_pages).tolist()
        unreferenced = shuffled[sum(pages_per_sequence):]
        # Entries past a sequence's last page point at a NaN page: reading one would leak.
        table = torch.full((batch, max(pages_per_sequence, default=0) + 1), unreferenced[0], dtype=torch.int32)
        slots, cursor = [], 0
        for b, count in enumerate(pages_per_sequence):
            pages = shuffled[cursor : cursor + count]
            cursor += count
            table[b, :count] = torch.tensor(pages, dtype=torch.int32)
            slots.append([pages[t // page_size] * page_size + t % page_size for t in range(needed[b])])
        blocks, block_size = num_pages, page_size
        cache_batch_idx = None
        page_table = table.to(device)
    k_cache = torch.full((blocks, block_size, case.heads_kv, case.head_dim), math.nan, device=device).to(case.dtype)
    v_cache = torch.full((blocks, block_size, case.heads_kv, case.head_dim_v), math.nan, device=device).to(case.dtype)
    for b, length in enumerate(case.lengths):
        where = torch.tensor(slots[b][:length], dtype=torch.long, device=device)
        k_cache.view(-1, case.heads_kv, case.head_dim)[where] = keys[b][:length]
        v_cache.view(-1, case.heads_kv, case.head_dim_v)[where] = values[b][:length]
    return Cache(k_cache, v_cache, cache_batch_idx, page_table, slots)


def logical_inputs(case: Case, device):
    """q and each sequence's full keys and values (cached part, then the new tokens)."""
    batch = len(case.lengths)
    q = torch.randn(batch, case.seqlen_q, case.heads_q, case.head_dim, device=device).to(case.dtype)
    keys = [torch.randn(n + case.new_tokens, case.heads_kv, case.head_dim, device=device).to(case.dtype) for n in case.lengths]
    values = [torch.randn(n + case.new_tokens, case.heads_kv, case.head_dim_v, device=device).to(case.dtype) for n in case.lengths]
    return q, keys, values


def new_tokens(case: Case, keys, values):
    if case.new_tokens == 0:
        return None, None
    k = torch.stack([key[length:] for key, length in zip(keys, case.lengths)])
    v = torch.stack([value[length:] for value, length in zip(values, case.lengths)])
    return k, v


def reference_attention(case: Case, q, keys, values, compute_dtype):
    outs, lses = [], []
    for b in range(len(case.lengths)):
        out, lse = reference.attention(
            q[b : b + 1], keys[b][None], values[b][None], causal=case.causal, window=case.window,
            softcap=case.softcap, compute_dtype=compute_dtype,
        )
        outs.append(out)
        lses.append(lse)
    return torch.cat(outs), torch.cat(lses)


def expected_cache(case: Case, cache: Cache, keys, values):
    """The cache as it must be after the call: the new tokens in their slots, all else unchanged."""
    k_after, v_after = cache.k_cache.clone(), cache.v_cache.clone()
    for b, length in enumerate(case.lengths):
        where = torch.tensor(cache.slots[b][length:], dtype=torch.long, device=k_after.device)
        k_after.view(-1, case.heads_kv, case.head_dim)[where] = keys[b][length:]
        v_after.view(-1, case.heads_kv, case.head_dim_v)[where] = values[b][length:]
    return k_after, v_after


def assert_same_with_nan(actual, expected, name):
    assert torch.equal(torch.isnan(actual), torch.isnan(expected)), f"{name}: NaN slots differ"
    finite = ~torch.isnan(expected)
    assert torch.equal(actual[finite], expected[finite]), f"{name}: values differ"


@pytest.mark.parametrize("device, case", _params())
def test_kvcache_matches_reference(device: str, case: Case):
    q, keys, values = logical_inputs(case, device)
    cache = build_cache(case, keys, values, device)
    k_new, v_new = new_tokens(case, keys, values)
    k_after, v_after = expected_cache(case, cache, keys, values)
    cache_seqlens = torch.tensor(case.lengths, dtype=torch.int32, device=device)

    out, lse, *rest = flash_attn_with_kvcache(
        q, cache.k_cache, cache.v_cache, k_new, v_new, cache_seqlens=cache_seqlens,
        cache_batch_idx=cache.cache_batch_idx, page_table=cache.page_table, causal=case.causal,
        window_size=case.window, softcap=case.softcap, num_splits=case.num_splits, return_softmax_lse=True,
    )

    assert len(rest) == 2 and all(t.numel() == 0 for t in rest)
    assert_same_with_nan(cache.k_cache, k_after, "k_cache")
    assert_same_with_nan(cache.v_cache, v_after, "v_cache")
    assert torch.equal(cache_seqlens.cpu(), torch.tensor(case.lengths, dtype=torch.int32)), "cache_seqlens changed"
    out64, lse64 = reference_attention(case, q.double(), [k.double() for k in keys], [v.double() for v in values], torch.float64)
    same = None if case.dtype == torch.float32 else reference_attention(case, q, keys, values, case.dtype)[0]
    assert out.dtype == case.dtype and out.shape == (len(case.lengths), case.seqlen_q, case.heads_q, case.head_dim_v)
    reference.check("out", out, out64, same)
    reference.check_lse(lse, lse64)
    empty_rows = torch.isneginf(lse64).transpose(1, 2)
    if empty_rows.any():
        assert (out[empty_rows] == 0).all()


def test_kvcache_int_cache_seqlens_and_full_cache(device):
    """cache_seqlens as an int (every sequence), and None (each sequence fills its cache row):
    the same as flash_attn_func on the cached keys."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    q = torch.randn(3, 2, 4, 64, device=device).to(dtype)
    k_cache, v_cache = (torch.randn(3, 29, 2, 64, device=device).to(dtype) for _ in range(2))
    # The CPU runs both through one kernel (bit-equal); CUDA runs the decode kernel against the
    # fixed-length one, with their own summation orders (bf16 rounding apart).
    same = torch.equal if device == "cpu" else lambda a, b: torch.allclose(a.float(), b.float(), rtol=2e-2, atol=2e-2)
    full = flash_attn_func(q, k_cache, v_cache, causal=True)
    assert same(flash_attn_with_kvcache(q, k_cache, v_cache, causal=True), full)
    prefix = flash_attn_func(q, k_cache[:, :11], v_cache[:, :11], causal=True)
    k_cache[:, 11:] = math.nan
    v_cache[:, 11:] = math.nan
    result = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=11, causal=True)
    assert torch.isfinite(result).all() and same(result, prefix)


def test_kvcache_decode_loop_matches_full_attention(device):
    """Generation: a prompt written into a paged cache, then one token at a time appended with
    the call itself; each step's output equals causal attention over the whole sequence so far."""
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    batch, steps, prompt, page_size = 2, 6, 5, 4
    heads_kv, head_dim = 2, 64
    total = prompt + steps
    q_all = torch.randn(batch, total, 4, head_dim, device=device).to(dtype)
    k_all, v_all = (torch.randn(batch, total, heads_kv, head_dim, device=device).to(dtype) for _ in range(2))
    pages = math.ceil(total / page_size)
    k_cache, v_cache = (torch.full((batch * pages + 1, page_size, heads_kv, head_dim), math.nan, device=device).to(dtype) for _ in range(2))
    page_table = torch.randperm(batch * pages + 1)[: batch * pages].view(batch, pages).to(torch.int32).to(device)
    cache_seqlens = torch.zeros(batch, dtype=torch.int32, device=device)
    flash_attn_with_kvcache(
        q_all[:, :prompt], k_cache, v_cache, k_all[:, :prompt], v_all[:, :prompt], cache_seqlens=cache_seqlens,
        page_table=page_table, causal=True,
    )
    cache_seqlens += prompt
    expected = flash_attn_func(q_all, k_all, v_all, causal=True)
    for step in range(prompt, total):
        out = flash_attn_with_kvcache(
            q_all[:, step : step + 1], k_cache, v_cache, k_all[:, step : step + 1], v_all[:, step : step + 1],
            cache_seqlens=cache_seqlens, page_table=page_table, causal=True,
        )
        cache_seqlens += 1
        tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(out[:, 0], expected[:, step], **tolerance, msg=lambda m: f"step {step}: {m}")


def test_kvcache_page_table_entries_past_the_last_page_are_never_read():
    """Entries past a sequence's last page may hold anything, even indexes outside the cache."""
    q = torch.randn(2, 1, 4, 64)
    k_cache, v_cache = torch.randn(6, 3, 2, 64), torch.randn(6, 3, 2, 64)
    page_table = torch.tensor([[4, 1, -5, 10**6], [0, 2**31 - 1, -1, 7]], dtype=torch.int32)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=torch.tensor([5, 2], dtype=torch.int32), page_table=page_table)
    keys0 = torch.cat([k_cache[4], k_cache[1]])[:5]
    values0 = torch.cat([v_cache[4], v_cache[1]])[:5]
    assert torch.equal(out[:1], flash_attn_func(q[:1], keys0[None], values0[None]))
    assert torch.equal(out[1:], flash_attn_func(q[1:], k_cache[0, :2][None], v_cache[0, :2][None]))
