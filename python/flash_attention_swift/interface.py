"""FlashAttention-3's `flash_attn_interface` functions (hopper/flash_attn_interface.py), with the
same argument names, order, defaults and return conventions, so code switches by changing an
import: flash_attn_func, flash_attn_qkvpacked_func, flash_attn_varlen_func,
flash_attn_with_kvcache and flash_attn_combine. FlashAttention-2's `flash_attn_kvpacked_func`
(which FA3 lacks) keeps FA2's signature.

Return convention (FA3's): `out`, or `(out, softmax_lse)` when `return_attn_probs=True`; FA2
returned a third value, the attention probabilities `S_dmask` (documented there as for testing
only), which no function here computes. flash_attn_with_kvcache with `return_softmax_lse=True`
returns FA3's `(out, softmax_lse, out_accum, softmax_lse_accum)`, the last two empty;
flash_attn_combine returns `(out, softmax_lse)`.

fp8: flash_attn_func takes torch.float8_e4m3fn q, k, v with float32 `q_descale`, `k_descale`,
`v_descale` of shape (batch, nheads_k) (None: 1), as FA3 does, and returns a bfloat16 output;
forward only (no autograd). The CUDA path needs an H100 (sm_90a) and head dims 64, 128 or 256;
the CPU computes it at any size.

Arguments that this library does not implement yet raise NotImplementedError naming them, when
given a value other than their default: `qv`, the descales outside flash_attn_func,
`attention_chunk`, `sm_margin`, and for the KV cache
rotary embedding, `cache_leftpad`, the varlen-q form and `scheduler_metadata`. `num_splits` and
`pack_gqa` are accepted: they are FA3's scheduling hints and do not change what is computed
(the KV-cache call hands `num_splits` to the library's split-KV).

Head dims: any on the CPU; on CUDA up to 256 everywhere and up to 512 (multiples of 8) in
flash_attn_func's forward and backward on sm_80/sm_90 (FlashAttention-3 stops at 256).

FA2's keyword-only `dropout_p` and `alibi_slopes` are taken by flash_attn_func and the packed
forms (FA3's varlen and KV-cache signatures have neither); dropout runs on the CPU for now.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from . import _combine, _fp8, _ops, _varlen_ops



def _not_implemented(feature: str, detail: str = "") -> NotImplementedError:
    suffix = f" ({detail})" if detail else ""
    return NotImplementedError(f"flash_attention_swift: {feature} is not supported yet{suffix}")


def _reject_unsupported(**arguments) -> None:
    """Raises for the first argument given a value other than its neutral default (called only
    when the caller's one-line check saw one)."""
    for name, value in arguments.items():
        if name in ("qv", "q_descale", "k_descale", "v_descale", "alibi_slopes"):
            if value is not None:
                detail = "fp8 descaling" if name.endswith("descale") else ""
                raise _not_implemented(f"the argument {name}", detail)
        elif name == "dropout_p":
            if value != 0.0:
                raise _not_implemented("the argument dropout_p", f"got {value}; only 0.0")
        elif value != 0:  # attention_chunk, sm_margin
            raise _not_implemented(f"the argument {name}", f"got {value}; only 0")


def _window(window_size) -> tuple[int, int]:
    if type(window_size) is tuple and len(window_size) == 2:
        left, right = window_size
        if type(left) is int and type(right) is int:
            return left, right
    try:
        left, right = window_size
    except (TypeError, ValueError):
        raise ValueError(
            f"flash_attention_swift: window_size must be a pair (left, right), got {window_size!r}"
        ) from None
    if isinstance(left, bool) or isinstance(right, bool):
        raise TypeError(f"flash_attention_swift: window_size must hold ints, got {window_size!r}")
    try:
        return int(left), int(right)
    except (TypeError, ValueError):
        raise TypeError(f"flash_attention_swift: window_size must hold ints, got {window_size!r}") from None


def _scale(softmax_scale) -> float | None:
    """None stays None: 1/sqrt(head_dim), computed where the head dim is read anyway."""
    if softmax_scale is None:
        return None
    scale = float(softmax_scale)
    # The library reads 0 as "the default 1/sqrt(head_dim)", so a caller's explicit 0 (uniform
    # attention) cannot be passed through; nothing else is rejected here (the library checks).
    if scale == 0.0:
        raise ValueError("flash_attention_swift: softmax_scale must be > 0 (got 0.0)")
    return scale


def _softcap(softcap) -> float:
    value = float(softcap)
    if not value >= 0.0:  # negative or NaN
        raise ValueError(f"flash_attention_swift: softcap must be >= 0 (0 disables it), got {softcap}")
    return value


def _check_num_splits(num_splits, pack_gqa) -> None:
    if not isinstance(num_splits, int) or num_splits < 0:
        raise ValueError(f"flash_attention_swift: num_splits must be an int >= 0, got {num_splits!r}")
    if pack_gqa is not None and not isinstance(pack_gqa, bool):
        raise TypeError(f"flash_attention_swift: pack_gqa must be None or a bool, got {pack_gqa!r}")


def _attention(
    q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs, alibi_slopes=None,
    dropout_p=0.0,
):
    out, softmax_lse = _ops.attention(
        q,
        k,
        v,
        _scale(softmax_scale),
        bool(causal),
        *_window(window_size),
        0.0 if softcap == 0.0 else _softcap(softcap),
        bool(deterministic),
        alibi_slopes,
        0.0 if dropout_p == 0.0 else float(dropout_p),
    )
    return (out, softmax_lse) if return_attn_probs else out


def flash_attn_func(
    q,
    k,
    v,
    softmax_scale=None,
    causal=False,
    qv=None,
    q_descale=None,
    k_descale=None,
    v_descale=None,
    window_size=(-1, -1),
    attention_chunk=0,
    softcap=0.0,
    num_splits=1,
    pack_gqa=None,
    deterministic=False,
    sm_margin=0,
    return_attn_probs=False,
    *,
    dropout_p=0.0,
    alibi_slopes=None,
):
    """Exact attention softmax(softmax_scale * q k^T + mask) v with the FlashAttention algorithm.

    Arguments (FlashAttention-3's):
        q: (batch_size, seqlen_q, nheads, headdim)
        k: (batch_size, seqlen_k, nheads_k, headdim); nheads % nheads_k == 0 (MQA/GQA: query
            head h reads kv head h // (nheads // nheads_k))
        v: (batch_size, seqlen_k, nheads_k, headdim_v); headdim_v may differ from headdim
        softmax_scale: default 1 / sqrt(headdim).
        causal: the causal mask aligned to the bottom-right corner: key j is visible to query i
            iff j <= i + seqlen_k - seqlen_q. A row that sees no key gives out = 0, lse = -inf.
        window_size: (left, right) sliding window; visible iff
            i + seqlen_k - seqlen_q - left <= j <= i + seqlen_k - seqlen_q + right; -1 is
            unbounded. With causal the right bound is 0.
        softcap: > 0 applies softcap * tanh(s / softcap) to the scaled scores before masking.
        deterministic: a bit-reproducible backward.
        return_attn_probs: also return softmax_lse.
        num_splits, pack_gqa: accepted scheduling hints, no effect on the result.
        q_descale, k_descale, v_descale: for torch.float8_e4m3fn q, k, v, float32 factors of
            shape (batch, nheads_k) (None: 1); the output is then bfloat16 and there is no
            backward. fp8 takes neither dropout_p nor alibi_slopes (NotImplementedError).
        qv, attention_chunk, sm_margin: only their defaults (NotImplementedError otherwise).
        dropout_p (keyword-only, FA2's): dropout on the attention weights, kept ones scaled by
            1 / (1 - dropout_p); the mask comes from torch's default generator of q's device
            (torch.manual_seed reproduces a call) and the backward regenerates it. The
            softmax_lse is that of the undropped softmax. CPU only for now (the CUDA kernels
            raise NotImplementedError).
        alibi_slopes (keyword-only, FA2's): float32 (nheads) or (batch_size, nheads); adds
            -slope * |i + seqlen_k - seqlen_q - j| to the scaled (soft-capped) scores before the
            mask. CUDA slopes are copied to the host first (a synchronization).

    q, k, v are CPU tensors (float32, float16, bfloat16) or CUDA tensors (float16, bfloat16), any
    strides with a unit last stride (a tensor whose last stride is not 1 is copied first). CUDA
    work is queued on torch.cuda.current_stream() without synchronizing.

    Returns:
        out: (batch_size, seqlen_q, nheads, headdim_v), q's dtype.
        softmax_lse [if return_attn_probs]: float32 (batch_size, nheads, seqlen_q), the natural
            log of each row's softmax denominator. No gradient flows through it.
    """
    if qv is not None or attention_chunk != 0 or sm_margin != 0:
        _reject_unsupported(qv=qv, attention_chunk=attention_chunk, sm_margin=sm_margin)
    if num_splits != 1 or pack_gqa is not None:
        _check_num_splits(num_splits, pack_gqa)
    if _fp8.is_fp8(q) or q_descale is not None or k_descale is not None or v_descale is not None:
        if dropout_p != 0.0 or alibi_slopes is not None:
            raise NotImplementedError(
                "flash_attn_func: fp8 inputs (descales) take neither dropout_p nor alibi_slopes"
            )
        out, softmax_lse = _fp8.forward(
            q, k, v, q_descale, k_descale, v_descale, _scale(softmax_scale), bool(causal), _window(window_size),
            0.0 if softcap == 0.0 else _softcap(softcap),
        )
        return (out, softmax_lse) if return_attn_probs else out
    return _attention(
        q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs, alibi_slopes, dropout_p
    )


def flash_attn_qkvpacked_func(
    qkv,
    softmax_scale=None,
    causal=False,
    q_descale=None,
    k_descale=None,
    v_descale=None,
    window_size=(-1, -1),
    attention_chunk=0,
    softcap=0.0,
    deterministic=False,
    num_heads_q=None,
    sm_margin=0,
    return_attn_probs=False,
    *,
    dropout_p=0.0,
    alibi_slopes=None,
):
    """flash_attn_func on one packed tensor, FlashAttention-3's signature.

    qkv: (batch_size, seqlen, 3, nheads, headdim), or (batch_size, seqlen, nheads_q + 2 *
    nheads_k, headdim) with num_heads_q given (GQA). q, k, v are views of qkv: nothing is copied.
    Returns out, or (out, softmax_lse) with return_attn_probs.
    """
    _reject_unsupported(
        q_descale=q_descale,
        k_descale=k_descale,
        v_descale=v_descale,
        attention_chunk=attention_chunk,
        sm_margin=sm_margin,
    )
    _ops.check_tensor(qkv, "qkv")
    if qkv.dim() == 5:
        if qkv.shape[2] != 3:
            raise ValueError(
                f"flash_attention_swift: qkv must be (batch, seqlen, 3, heads, head_dim), got shape {tuple(qkv.shape)}"
            )
        q, k, v = qkv.unbind(dim=2)
    elif qkv.dim() == 4:
        if num_heads_q is None:
            raise ValueError(
                "flash_attention_swift: a 4-dimensional qkv (batch, seqlen, heads_q + 2 * heads_k, head_dim) "
                "needs num_heads_q"
            )
        heads_k = (qkv.shape[2] - num_heads_q) // 2
        if num_heads_q <= 0 or heads_k <= 0 or num_heads_q + 2 * heads_k != qkv.shape[2]:
            raise ValueError(
                f"flash_attention_swift: qkv has {qkv.shape[2]} heads, which is not num_heads_q ({num_heads_q}) "
                "+ 2 * heads_k"
            )
        q, k, v = qkv.split([num_heads_q, heads_k, heads_k], dim=2)
    else:
        raise ValueError(
            "flash_attention_swift: qkv must have 5 dimensions (batch, seqlen, 3, heads, head_dim) or 4 with "
            f"num_heads_q, got shape {tuple(qkv.shape)}"
        )
    return _attention(
        q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs, alibi_slopes, dropout_p
    )


def flash_attn_kvpacked_func(
    q,
    kv,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
    window_size=(-1, -1),
    softcap=0.0,
    alibi_slopes=None,
    deterministic=False,
    return_attn_probs=False,
):
    """flash_attn_func with k and v packed, FlashAttention-2's signature (FA3 has no such
    function). q: (batch_size, seqlen_q, nheads, headdim), kv: (batch_size, seqlen_k, 2,
    nheads_k, headdim); k and v are views of kv. dropout_p and alibi_slopes as in flash_attn_func.
    Returns out, or (out, softmax_lse) with return_attn_probs (FA3's convention: no S_dmask).
    """
    _ops.check_tensor(kv, "kv")
    if kv.dim() != 5 or kv.shape[2] != 2:
        raise ValueError(
            f"flash_attention_swift: kv must be (batch, seqlen, 2, heads, head_dim), got shape {tuple(kv.shape)}"
        )
    k, v = kv.unbind(dim=2)
    return _attention(
        q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs, alibi_slopes, dropout_p
    )


def _max_seqlen(value, name: str):
    """An int (or a SymInt while compiling); a one-element integer tensor is read (as
    transformers passes one), which synchronizes with its device."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)):
        raise TypeError(f"flash_attention_swift: {name} must be an int, got {type(value).__name__}")
    return value


def _check_index_type(value, name: str) -> None:
    if value is not None and not isinstance(value, torch.Tensor):
        raise TypeError(f"flash_attention_swift: {name} must be a torch.int32 tensor, got {type(value).__name__}")


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q,
    max_seqlen_k,
    seqused_q=None,
    seqused_k=None,
    softmax_scale=None,
    causal=False,
    qv=None,
    q_descale=None,
    k_descale=None,
    v_descale=None,
    window_size=(-1, -1),
    attention_chunk=0,
    softcap=0.0,
    num_splits=1,
    pack_gqa=None,
    deterministic=False,
    sm_margin=0,
    return_attn_probs=False,
):
    """Attention over a packed batch of sequences of different lengths (no padding),
    FlashAttention-3's signature. Forward and backward.

    Arguments:
        q: (total_q, nheads, headdim), the sequences' queries one after another.
        k: (total_k, nheads_k, headdim); v: (total_k, nheads_k, headdim_v). GQA as in
            flash_attn_func.
        cu_seqlens_q, cu_seqlens_k: torch.int32 (batch_size + 1,), prefix sums of the lengths
            starting at 0: sequence b is rows cu_seqlens_q[b] : cu_seqlens_q[b + 1] of q (and of
            k, v with cu_seqlens_k). A sequence may be empty.
        max_seqlen_q, max_seqlen_k: ints, at least the longest sequence's length.
        seqused_q, seqused_k: optional torch.int32 (batch_size,): only the first seqused[b]
            tokens of sequence b count; its other query rows get out 0 and lse -inf, its other
            rows zero gradients.
        causal, window_size, softcap, softmax_scale, deterministic: as in flash_attn_func, per
            sequence with its own lengths (causal aligned to each sequence's bottom-right corner).
        num_splits, pack_gqa: accepted scheduling hints, no effect on the result.
        qv, q_descale, k_descale, v_descale, attention_chunk, sm_margin: only their defaults.

    Query rows after cu_seqlens_q[-1] belong to no sequence: out 0, lse -inf. Index tensors live
    on q's device; on the CPU their values are checked (ValueError naming the entry), CUDA index
    data is trusted, as FlashAttention trusts it.

    Returns:
        out: (total_q, nheads, headdim_v), q's dtype.
        softmax_lse [if return_attn_probs]: float32 (nheads, total_q); no gradient flows through it.
    """
    if (
        qv is not None or q_descale is not None or k_descale is not None or v_descale is not None
        or attention_chunk != 0 or sm_margin != 0
    ):
        _reject_unsupported(
            qv=qv, q_descale=q_descale, k_descale=k_descale, v_descale=v_descale,
            attention_chunk=attention_chunk, sm_margin=sm_margin,
        )
    if num_splits != 1 or pack_gqa is not None:
        _check_num_splits(num_splits, pack_gqa)
    for value, name in (
        (cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k"), (seqused_q, "seqused_q"), (seqused_k, "seqused_k")
    ):
        _check_index_type(value, name)
    if cu_seqlens_q is None or cu_seqlens_k is None:
        raise TypeError("flash_attention_swift: cu_seqlens_q and cu_seqlens_k are required (torch.int32, batch_size + 1)")
    out, softmax_lse = _varlen_ops.varlen_attention(
        q,
        k,
        v,
        cu_seqlens_q,
        cu_seqlens_k,
        seqused_q,
        seqused_k,
        _max_seqlen(max_seqlen_q, "max_seqlen_q"),
        _max_seqlen(max_seqlen_k, "max_seqlen_k"),
        _scale(softmax_scale),
        bool(causal),
        *_window(window_size),
        0.0 if softcap == 0.0 else _softcap(softcap),
        bool(deterministic),
    )
    return (out, softmax_lse) if return_attn_probs else out


def _cache_seqlens(cache_seqlens, q, k_cache, page_table, appending: bool):
    """cache_seqlens as FlashAttention takes it: an int32 tensor (batch_size,), an int for every
    sequence, or None for a full cache."""
    if isinstance(cache_seqlens, torch.Tensor):
        return cache_seqlens
    for tensor, name in ((q, "q"), (k_cache, "k_cache")):
        if tensor.dim() != 4:
            raise ValueError(
                f"flash_attention_swift: {name} must have 4 dimensions, got shape {tuple(tensor.shape)}"
            )
    if cache_seqlens is None:
        if appending:
            raise ValueError(
                "flash_attention_swift: cache_seqlens is required when k and v are appended (it says where they go)"
            )
        if page_table is None:
            cache_seqlens = k_cache.shape[1]
        elif isinstance(page_table, torch.Tensor) and page_table.dim() == 2:
            cache_seqlens = page_table.shape[1] * k_cache.shape[1]
        else:
            raise ValueError("flash_attention_swift: page_table must be a torch.int32 tensor (batch_size, max_num_pages)")
    elif isinstance(cache_seqlens, bool) or not isinstance(cache_seqlens, (int, torch.SymInt)):
        raise TypeError(
            f"flash_attention_swift: cache_seqlens must be an int or a torch.int32 tensor, got {type(cache_seqlens).__name__}"
        )
    elif not 0 <= cache_seqlens < 2**31:
        raise ValueError(f"flash_attention_swift: cache_seqlens = {cache_seqlens} must be in 0 ..< 2^31")
    return torch.full((q.shape[0],), cache_seqlens, dtype=torch.int32, device=q.device)


_KVCACHE_UNSUPPORTED = {
    "qv": None,
    "rotary_cos": "rotary embedding",
    "rotary_sin": "rotary embedding",
    "cache_leftpad": None,
    "cu_seqlens_q": "the variable-length query form",
    "cu_seqlens_k_new": "the variable-length query form",
    "max_seqlen_q": "the variable-length query form",
    "rotary_seqlens": "rotary embedding",
    "q_descale": "fp8 descaling",
    "k_descale": "fp8 descaling",
    "v_descale": "fp8 descaling",
    "scheduler_metadata": None,
}


def flash_attn_with_kvcache(
    q,
    k_cache,
    v_cache,
    k=None,
    v=None,
    qv=None,
    rotary_cos=None,
    rotary_sin=None,
    cache_seqlens: Optional[Union[int, torch.Tensor]] = None,
    cache_batch_idx: Optional[torch.Tensor] = None,
    cache_leftpad: Optional[torch.Tensor] = None,
    page_table: Optional[torch.Tensor] = None,
    cu_seqlens_q: Optional[torch.Tensor] = None,
    cu_seqlens_k_new: Optional[torch.Tensor] = None,
    max_seqlen_q: Optional[int] = None,
    rotary_seqlens: Optional[torch.Tensor] = None,
    q_descale: Optional[torch.Tensor] = None,
    k_descale: Optional[torch.Tensor] = None,
    v_descale: Optional[torch.Tensor] = None,
    softmax_scale=None,
    causal=False,
    window_size=(-1, -1),
    attention_chunk=0,
    softcap=0.0,
    rotary_interleaved=True,
    scheduler_metadata=None,
    num_splits=0,
    pack_gqa=None,
    sm_margin=0,
    return_softmax_lse=False,
):
    """Attention of new queries against a KV cache (decoding), FlashAttention-3's signature.
    Forward only.

    If k and v are given they are written into k_cache and v_cache IN PLACE, at positions
    cache_seqlens[b] ... of each sequence, before the attention, which then sees
    cache_seqlens[b] + seqlen_new keys. cache_seqlens itself is not updated (the caller advances it).

    Arguments:
        q: (batch_size, seqlen_q, nheads, headdim); several query tokens per sequence are allowed
            (speculative decoding), with causal aligned to the end of each sequence's keys.
        k_cache, v_cache: (batch_size_cache, seqlen_cache, nheads_k, headdim / headdim_v), or with
            page_table (num_pages, page_size, nheads_k, headdim / headdim_v) with any page_size >= 1.
            Their last stride must be 1 (they are never copied).
        k, v: optional (batch_size, seqlen_new, nheads_k, headdim / headdim_v), appended.
        cache_seqlens: int, or torch.int32 (batch_size,): tokens already in each sequence's cache.
            None means every sequence fills the whole cache (no append then).
        cache_batch_idx: optional torch.int32 (batch_size,): the cache row of sequence b
            (contiguous caches; default b).
        page_table: optional torch.int32 (batch_size, max_num_pages): page p of sequence b is
            k_cache[page_table[b, p]]. Entries past a sequence's last page are never read.
        softmax_scale, causal, window_size, softcap: as in flash_attn_func.
        num_splits: key chunks per sequence computed apart and merged by their LSEs (split-KV);
            0 lets the library choose. No effect on the result beyond rounding.
        return_softmax_lse: also return the LSE.
        pack_gqa, rotary_interleaved: accepted (rotary_interleaved only matters with rotary).
        qv, rotary_cos, rotary_sin, cache_leftpad, cu_seqlens_q, cu_seqlens_k_new, max_seqlen_q,
        rotary_seqlens, q_descale, k_descale, v_descale, scheduler_metadata: only None;
        attention_chunk, sm_margin: only 0 (NotImplementedError otherwise).

    Cache slots past a sequence's keys and pages its table does not reach are never read: they
    may hold anything, NaN included.

    Returns:
        out: (batch_size, seqlen_q, nheads, headdim_v).
        With return_softmax_lse, FlashAttention-3's tuple (out, softmax_lse, out_accum,
        softmax_lse_accum): softmax_lse float32 (batch_size, nheads, seqlen_q); the last two are
        FA3's split-KV partial results, which are always empty tensors here (the library merges
        its splits itself), as FA3's are when it does not split. `out, lse, *_ = ...` reads both.
    """
    if (
        qv is not None or rotary_cos is not None or rotary_sin is not None or cache_leftpad is not None
        or cu_seqlens_q is not None or cu_seqlens_k_new is not None or max_seqlen_q is not None
        or rotary_seqlens is not None or q_descale is not None or k_descale is not None or v_descale is not None
        or scheduler_metadata is not None
    ):
        unsupported = {
            "qv": qv, "rotary_cos": rotary_cos, "rotary_sin": rotary_sin, "cache_leftpad": cache_leftpad,
            "cu_seqlens_q": cu_seqlens_q, "cu_seqlens_k_new": cu_seqlens_k_new, "max_seqlen_q": max_seqlen_q,
            "rotary_seqlens": rotary_seqlens, "q_descale": q_descale, "k_descale": k_descale,
            "v_descale": v_descale, "scheduler_metadata": scheduler_metadata,
        }
        name = next(name for name, value in unsupported.items() if value is not None)
        raise _not_implemented(f"the argument {name}", _KVCACHE_UNSUPPORTED[name] or "")
    if attention_chunk != 0 or sm_margin != 0:
        _reject_unsupported(attention_chunk=attention_chunk, sm_margin=sm_margin)
    if type(num_splits) is not int or num_splits < 0 or pack_gqa is not None:
        _check_num_splits(num_splits, pack_gqa)
    for tensor, name in ((q, "q"), (k_cache, "k_cache"), (v_cache, "v_cache"), (k, "k"), (v, "v")):
        if tensor is not None:
            _ops.check_tensor(tensor, name)
    if cache_batch_idx is not None or page_table is not None:
        _check_index_type(cache_batch_idx, "cache_batch_idx")
        _check_index_type(page_table, "page_table")
    cache_seqlens = _cache_seqlens(cache_seqlens, q, k_cache, page_table, appending=k is not None or v is not None)
    out, softmax_lse = _varlen_ops.kvcache_attention(
        q,
        k_cache,
        v_cache,
        k,
        v,
        cache_seqlens,
        cache_batch_idx,
        page_table,
        _scale(softmax_scale),
        bool(causal),
        *_window(window_size),
        0.0 if softcap == 0.0 else _softcap(softcap),
        num_splits,
    )
    if not return_softmax_lse:
        return out
    return out, softmax_lse, out.new_empty(0, dtype=torch.float32), out.new_empty(0, dtype=torch.float32)


def flash_attn_combine(out_partial, lse_partial, out=None, out_dtype=None):
    """Merges results computed on disjoint parts of the keys (split-KV, ring attention) by their
    LSEs, FlashAttention-3's semantics: out = sum_i exp(lse_i - lse) out_i, lse = logsumexp_i lse_i.

    Arguments:
        out_partial: float32 (num_splits, batch_size, seqlen, nheads, headdim), each split's
            normalized output.
        lse_partial: float32 (num_splits, batch_size, seqlen, nheads), each split's LSE (a split
            that saw no key has -inf there and contributes nothing, whatever its out holds).
            flash_attn_func's LSE is (batch, nheads, seqlen): pass lse.transpose(-1, -2).
        out: optional (batch_size, seqlen, nheads, headdim) tensor of dtype out_dtype, written
            and returned.
        out_dtype: float32 (default), float16 or bfloat16.

    Any leading shape works the same way (e.g. varlen results (num_splits, total_q, nheads,
    headdim) with LSEs (num_splits, total_q, nheads)). Computed with torch in float32, so it
    runs on any device and is differentiable.

    Returns:
        (out, softmax_lse): out (batch_size, seqlen, nheads, headdim) in out_dtype, softmax_lse
        float32 (batch_size, seqlen, nheads); rows no split saw get out 0 and lse -inf.
    """
    return _combine.combine(out_partial, lse_partial, out, out_dtype)
