"""Hugging Face transformers integration: an attention function for `AttentionInterface`.

    import flash_attention_swift.transformers_integration as fas_hf
    name = fas_hf.register()                       # "fa_swift"
    model = AutoModelForCausalLM.from_config(config, attn_implementation=name)

The name holds no "flash": transformers treats any implementation whose name contains "flash"
as a FlashAttention build to import or download from its kernel hub. The mask function
registered with it is transformers' own `flash_attention_mask`, which gives None when there is no
padding (the usual training and generation case) and the 2-D padding mask otherwise.

As transformers' FlashAttention path does: without a mask, plain (bottom-right causal)
attention; with a padding mask, the padding tokens are removed, the batch runs as a packed
variable-length batch, and the outputs are put back in place (zeros at padded positions);
packed sequences (`cu_seq_lens_q/k` keyword arguments, or `position_ids` that restart within one
row) run as variable-length batches without padding. Paged caches (continuous batching) and
attention dropout raise NotImplementedError. Needs transformers >= 4.53 (AttentionMaskInterface).
"""

from __future__ import annotations

from typing import Optional

import torch

from .interface import flash_attn_func, flash_attn_varlen_func

TRANSFORMERS_NAME = "fa_swift"

_PAGED_KWARGS = ("block_table", "k_cache", "v_cache")

_PACKED_UNDER_COMPILE = (
    "flash_attention_swift: packed sequences given by position_ids (positions restarting within a row) are "
    "found from the positions' values, which torch.compile cannot branch on; pass cu_seq_lens_q/cu_seq_lens_k "
    "(DataCollatorWithFlattening(return_flash_attn_kwargs=True)) instead"
)


def _packed_by_positions(position_ids: Optional[torch.Tensor], batch_size: int) -> Optional[torch.Tensor]:
    """cu_seqlens of the sequences packed into one row (positions restart at their minimum), as
    transformers' FlashAttention path finds them; None for a single sequence. Eagerly this reads
    the positions; under torch.compile a packed row fails an assertion in the graph instead (no
    graph break on a data-dependent branch)."""
    if position_ids is None or batch_size != 1 or position_ids.shape[-1] == 1:
        return None
    positions = position_ids.reshape(-1)
    increasing = torch.arange(positions.shape[0], device=positions.device) + positions.min()
    single_sequence = (increasing - positions).abs().sum() == 0
    if torch.compiler.is_compiling():
        torch._assert_async(single_sequence, _PACKED_UNDER_COMPILE)
        return None
    if bool(single_sequence):
        return None
    starts = (positions == positions.min()).nonzero().view(-1)
    end = torch.tensor([positions.shape[0]], device=positions.device)
    return torch.cat((starts, end)).to(torch.int32)


def _unpad(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The flat indexes of the tokens a (batch, length) mask keeps, and cu_seqlens (int32)."""
    indexes = torch.nonzero(mask.reshape(-1), as_tuple=False).view(-1)
    lengths = mask.sum(dim=-1, dtype=torch.int32)
    cu_seqlens = torch.nn.functional.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))
    return indexes, cu_seqlens


def _padded_attention(q, k, v, mask: torch.Tensor, options: dict) -> torch.Tensor:
    """Attention of a padded batch through the variable-length path (transformers' `_upad_input`
    rules): the keys are the mask's tokens; the queries are all tokens when there are as many
    queries as keys, each sequence's one query when decoding, else the last query_length
    positions of the mask. Padded query positions get zeros."""
    batch, query_length, heads, _ = q.shape
    key_length = mask.shape[-1]
    if k.shape[1] > key_length:  # a static cache longer than the tokens seen so far
        k, v = k[:, :key_length], v[:, :key_length]
    elif k.shape[1] < key_length:
        raise ValueError(
            f"flash_attention_swift: the attention mask covers {key_length} keys, the layer has {k.shape[1]}"
        )
    key_indexes, cu_seqlens_k = _unpad(mask)
    k = k.reshape(-1, *k.shape[2:])[key_indexes]
    v = v.reshape(-1, *v.shape[2:])[key_indexes]
    if query_length == key_length:
        query_indexes, cu_seqlens_q = key_indexes, cu_seqlens_k
    elif query_length == 1:
        query_indexes = torch.arange(batch, device=q.device)
        cu_seqlens_q = torch.arange(batch + 1, dtype=torch.int32, device=q.device)
    else:
        query_indexes, cu_seqlens_q = _unpad(mask[:, -query_length:])
    q = q.reshape(-1, *q.shape[2:])[query_indexes]
    # The padded lengths bound every sequence's: no device-to-host read of the true maxima.
    out = flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, query_length, key_length, **options)
    padded = out.new_zeros(batch * query_length, heads, out.shape[-1]).index_copy(0, query_indexes, out)
    return padded.view(batch, query_length, heads, out.shape[-1])


def _packed_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_length_q, max_length_k, options: dict) -> torch.Tensor:
    """The rows of the batch flattened into one packed batch of sequences given by cu_seqlens."""
    batch = q.shape[0]
    total_q, total_k = batch * q.shape[1], batch * k.shape[1]
    q, k, v = (t.reshape(-1, *t.shape[2:]) for t in (q, k, v))
    out = flash_attn_varlen_func(
        q, k, v, cu_seqlens_q.to(torch.int32), cu_seqlens_k.to(torch.int32),
        total_q if max_length_q is None else max_length_q, total_k if max_length_k is None else max_length_k,
        **options,
    )
    return out.view(batch, -1, *out.shape[-2:])


def attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    sliding_window: Optional[int] = None,
    softcap: Optional[float] = None,
    is_causal: Optional[bool] = None,
    s_aux: Optional[torch.Tensor] = None,
    position_bias: Optional[torch.Tensor] = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query (batch, heads, seqlen_q, head_dim), key/value
    (batch, heads_kv, seqlen_k, head_dim[_v]); attention_mask None or the 2-D padding mask
    (batch, seqlen_k) of `flash_attention_mask`; returns ((batch, seqlen_q, heads, head_dim_v),
    None). GQA runs without repeating K and V; the transposes are views (no copies)."""
    if dropout:
        raise NotImplementedError(f"flash_attention_swift: attention dropout ({dropout}) is not supported yet")
    if s_aux is not None:
        raise NotImplementedError("flash_attention_swift: attention sinks (s_aux) are not supported")
    if position_bias is not None:
        raise NotImplementedError("flash_attention_swift: position_bias is not supported")
    for name in _PAGED_KWARGS:
        if kwargs.get(name) is not None:
            raise NotImplementedError(f"flash_attention_swift: {name} (paged attention, continuous batching) is not supported yet")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    q, k, v = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
    options = dict(softmax_scale=scaling, causal=bool(causal), softcap=softcap or 0.0)
    # transformers' convention for FlashAttention: sliding_window tokens including the current one.
    window_size = (-1, -1) if sliding_window is None else (sliding_window - 1, sliding_window - 1)

    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise ValueError(
                "flash_attention_swift: expected the 2-D padding mask of transformers' flash_attention_mask, "
                f"got shape {tuple(attention_mask.shape)}"
            )
        return _padded_attention(q, k, v, attention_mask, dict(options, window_size=window_size)), None
    cu_seqlens_q, cu_seqlens_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_seqlens_q is not None and cu_seqlens_k is not None:
        out = _packed_attention(
            q, k, v, cu_seqlens_q, cu_seqlens_k, kwargs.get("max_length_q"), kwargs.get("max_length_k"),
            dict(options, window_size=window_size),
        )
        return out, None
    cu_seqlens = _packed_by_positions(kwargs.get("position_ids"), q.shape[0])
    if cu_seqlens is not None:
        return _packed_attention(q, k, v, cu_seqlens, cu_seqlens, None, None, dict(options, window_size=window_size)), None
    if sliding_window is None or k.shape[1] <= sliding_window:
        window_size = (-1, -1)  # the window holds every key
    return flash_attn_func(q, k, v, window_size=window_size, **options), None


def register(name: str = TRANSFORMERS_NAME) -> str:
    """Registers `attention_forward` (and transformers' FlashAttention mask function) under
    `name`, for `attn_implementation=name`; returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    if "flash" in name:
        raise ValueError(
            f"flash_attention_swift: {name!r} contains 'flash', which transformers reserves for FlashAttention "
            "builds it imports itself; choose another name"
        )
    AttentionInterface.register(name, attention_forward)
    AttentionMaskInterface.register(name, flash_attention_mask)
    return name
