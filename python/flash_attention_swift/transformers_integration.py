"""Hugging Face transformers integration: an attention function for `AttentionInterface`.

    import flash_attention_swift.transformers_integration as fas_hf
    name = fas_hf.register()                       # "fa_swift"
    model = AutoModelForCausalLM.from_config(config, attn_implementation=name)

The name holds no "flash": transformers treats any implementation whose name contains "flash"
as a FlashAttention build to import or download from its kernel hub. The mask function
registered with it is transformers' own `flash_attention_mask`, which gives None when there is no
padding (the usual training and generation case) and the 2-D padding mask otherwise; padded
batches, packed sequences and paged caches need variable-length attention, which this package
does not support yet, so they raise NotImplementedError instead of computing a wrong result.
Needs transformers >= 4.53 (AttentionMaskInterface).
"""

from __future__ import annotations

from typing import Optional

import torch

from .interface import flash_attn_func

TRANSFORMERS_NAME = "fa_swift"

_VARLEN_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "block_table", "k_cache", "v_cache")


_PACKED_MESSAGE = (
    "flash_attention_swift: packed sequences (position_ids restarting within a row) need variable-length "
    "attention, which is not supported yet"
)


def _refuse_packed_sequences(position_ids: Optional[torch.Tensor], batch_size: int) -> None:
    """transformers' test for several sequences packed into one row (positions restart), which
    its FlashAttention path turns into variable-length attention. Eagerly it raises; under
    torch.compile it becomes an assertion in the graph (no graph break on a data-dependent if)."""
    if position_ids is None or batch_size != 1 or position_ids.shape[-1] == 1:
        return
    increasing = torch.arange(position_ids.shape[-1], device=position_ids.device) + position_ids.min()
    single_sequence = (increasing - position_ids).abs().sum() == 0
    if torch.compiler.is_compiling():
        torch._assert_async(single_sequence, _PACKED_MESSAGE)
    elif not bool(single_sequence):
        raise NotImplementedError(_PACKED_MESSAGE)


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
    (batch, heads_kv, seqlen_k, head_dim[_v]); returns ((batch, seqlen_q, heads, head_dim_v), None).
    GQA runs without repeating K and V; the transposes are views (no copies)."""
    if attention_mask is not None:
        raise NotImplementedError(
            "flash_attention_swift: an attention mask (padding, or a static cache longer than the keys) needs "
            "variable-length attention, which is not supported yet"
        )
    if dropout:
        raise NotImplementedError(f"flash_attention_swift: attention dropout ({dropout}) is not supported yet")
    if s_aux is not None:
        raise NotImplementedError("flash_attention_swift: attention sinks (s_aux) are not supported")
    if position_bias is not None:
        raise NotImplementedError("flash_attention_swift: position_bias is not supported")
    for name in _VARLEN_KWARGS:
        if kwargs.get(name) is not None:
            raise NotImplementedError(f"flash_attention_swift: {name} (variable-length or paged attention) is not supported yet")
    _refuse_packed_sequences(kwargs.get("position_ids"), query.shape[0])
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    window_size = (-1, -1)
    if sliding_window is not None and key.shape[2] > sliding_window:
        # transformers' convention for FlashAttention: sliding_window tokens including the current one.
        window_size = (sliding_window - 1, sliding_window - 1)
    out = flash_attn_func(
        query.transpose(1, 2),
        key.transpose(1, 2),
        value.transpose(1, 2),
        softmax_scale=scaling,
        causal=bool(causal),
        window_size=window_size,
        softcap=softcap or 0.0,
    )
    return out, None


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
