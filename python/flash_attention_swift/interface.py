"""FlashAttention-3's `flash_attn_interface` functions (hopper/flash_attn_interface.py), with the
same argument names, order, defaults and return conventions, so code switches by changing an
import. FlashAttention-2's `flash_attn_kvpacked_func` (which FA3 lacks) keeps FA2's signature.

Return convention (FA3's, for every function here): `out`, or `(out, softmax_lse)` when
`return_attn_probs=True`. FA2 returned a third value, the attention probabilities `S_dmask`
(documented there as for testing only); no function here computes it.

Arguments that this library does not implement yet raise NotImplementedError naming them, when
given a value other than their default: `qv`, `q_descale`/`k_descale`/`v_descale` (fp8),
`attention_chunk`, `sm_margin`, FA2's `dropout_p` and `alibi_slopes`. `num_splits` and `pack_gqa`
are accepted: they are FA3's scheduling hints and do not change what is computed; the library
picks its own work split.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from . import _ops



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


def _attention(q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs):
    out, softmax_lse = _ops.attention(
        q,
        k,
        v,
        _scale(softmax_scale),
        bool(causal),
        *_window(window_size),
        0.0 if softcap == 0.0 else _softcap(softcap),
        bool(deterministic),
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
        qv, q_descale, k_descale, v_descale, attention_chunk, sm_margin: only their defaults
            (NotImplementedError otherwise); so are the keyword-only FA2 arguments dropout_p and
            alibi_slopes.

    q, k, v are CPU tensors (float32, float16, bfloat16) or CUDA tensors (float16, bfloat16), any
    strides with a unit last stride (a tensor whose last stride is not 1 is copied first). CUDA
    work is queued on torch.cuda.current_stream() without synchronizing.

    Returns:
        out: (batch_size, seqlen_q, nheads, headdim_v), q's dtype.
        softmax_lse [if return_attn_probs]: float32 (batch_size, nheads, seqlen_q), the natural
            log of each row's softmax denominator. No gradient flows through it.
    """
    if (
        qv is not None or q_descale is not None or k_descale is not None or v_descale is not None
        or attention_chunk != 0 or sm_margin != 0 or dropout_p != 0.0 or alibi_slopes is not None
    ):
        _reject_unsupported(
            qv=qv,
            q_descale=q_descale,
            k_descale=k_descale,
            v_descale=v_descale,
            attention_chunk=attention_chunk,
            sm_margin=sm_margin,
            dropout_p=dropout_p,
            alibi_slopes=alibi_slopes,
        )
    if num_splits != 1 or pack_gqa is not None:
        _check_num_splits(num_splits, pack_gqa)
    return _attention(q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs)


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
        dropout_p=dropout_p,
        alibi_slopes=alibi_slopes,
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
    return _attention(q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs)


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
    nheads_k, headdim); k and v are views of kv. dropout_p must be 0.0 and alibi_slopes None.
    Returns out, or (out, softmax_lse) with return_attn_probs (FA3's convention: no S_dmask).
    """
    _reject_unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes)
    _ops.check_tensor(kv, "kv")
    if kv.dim() != 5 or kv.shape[2] != 2:
        raise ValueError(
            f"flash_attention_swift: kv must be (batch, seqlen, 2, heads, head_dim), got shape {tuple(kv.shape)}"
        )
    k, v = kv.unbind(dim=2)
    return _attention(q, k, v, softmax_scale, causal, window_size, softcap, deterministic, return_attn_probs)


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
    """FlashAttention-3's variable-length attention (q (total_q, nheads, headdim), int32
    cu_seqlens). Not supported yet: raises NotImplementedError."""
    raise _not_implemented("flash_attn_varlen_func (variable-length batches with cu_seqlens)")


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
    """FlashAttention-3's KV-cache attention for decoding. Not supported yet: raises
    NotImplementedError."""
    raise _not_implemented("flash_attn_with_kvcache (KV-cache attention)")


def flash_attn_combine(out_partial, lse_partial, out=None, out_dtype=None):
    """FlashAttention-3's merge of split-KV partial results. Not supported yet: raises
    NotImplementedError."""
    raise _not_implemented("flash_attn_combine (merging split-KV partial results)")
