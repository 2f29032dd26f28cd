"""flash_attn_combine: merging attention results over disjoint key sets by their LSEs.

Split i attended to its own keys and returned out_i (normalized by its own softmax denominator
exp(lse_i)); over all keys the denominator is sum_i exp(lse_i) = exp(lse), so the exact result
is out = sum_i exp(lse_i - lse) out_i. A few torch operations, in float32 like FlashAttention-3's
kernel, on any device, differentiable.
"""

from __future__ import annotations

import torch

_FLOAT32 = torch.float32
_OUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check(out_partial, lse_partial, out, out_dtype) -> torch.dtype:
    for tensor, name in ((out_partial, "out_partial"), (lse_partial, "lse_partial")):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"flash_attention_swift: {name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dtype != _FLOAT32:
            raise TypeError(f"flash_attention_swift: {name} must be torch.float32 (as in FlashAttention), got {tensor.dtype}")
    if out_partial.dim() < 2:
        raise ValueError(
            "flash_attention_swift: out_partial must be (num_splits, batch_size, seqlen, nheads, headdim), "
            f"got shape {tuple(out_partial.shape)}"
        )
    if lse_partial.shape != out_partial.shape[:-1]:
        raise ValueError(
            f"flash_attention_swift: lse_partial.shape {tuple(lse_partial.shape)} must be out_partial.shape[:-1] "
            f"{tuple(out_partial.shape[:-1])} (num_splits, batch_size, seqlen, nheads)"
        )
    if lse_partial.device != out_partial.device:
        raise ValueError(f"flash_attention_swift: lse_partial is on {lse_partial.device}, out_partial on {out_partial.device}")
    dtype = out_dtype if out_dtype is not None else out_partial.dtype
    if dtype not in _OUT_DTYPES:
        raise TypeError(f"flash_attention_swift: out_dtype must be torch.float32, torch.float16 or torch.bfloat16, got {dtype}")
    if out is not None:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"flash_attention_swift: out must be a torch.Tensor, got {type(out).__name__}")
        if out.shape != out_partial.shape[1:]:
            raise ValueError(
                f"flash_attention_swift: out.shape {tuple(out.shape)} must be out_partial.shape[1:] {tuple(out_partial.shape[1:])}"
            )
        if out.dtype != dtype:
            raise TypeError(f"flash_attention_swift: out has dtype {out.dtype}, expected {dtype} (out_dtype)")
        if out.device != out_partial.device:
            raise ValueError(f"flash_attention_swift: out is on {out.device}, out_partial on {out_partial.device}")
    return dtype


def combine(out_partial, lse_partial, out=None, out_dtype=None):
    """(out, lse): see interface.flash_attn_combine."""
    dtype = _check(out_partial, lse_partial, out, out_dtype)
    lse = torch.logsumexp(lse_partial, dim=0)  # -inf where every split is -inf (or none exists)
    # The weights exp(lse_i - lse) as exp(lse_i - max) / sum_j exp(lse_j - max): the same numbers,
    # but summing to 1 within float32's rounding, where exp(lse_i - lse) carries the rounding of
    # the merged lse (half its last place: 4e-6 relative at |lse| = 64) as a scale on the whole
    # output, which in a near-one-hot row outweighs the smaller splits' share. Where no split saw
    # a key, subtracting 0 instead of -inf keeps every weight 0 rather than NaN; the sum is then
    # 0, and otherwise at least 1 (the largest split's e^0), so clamping it at 1 changes nothing.
    largest = lse_partial.detach().amax(dim=0)  # a shift that cancels: no gradient through it
    reference = torch.where(torch.isneginf(largest), torch.zeros_like(largest), largest)
    shares = torch.exp(lse_partial - reference)
    weights = (shares / shares.sum(dim=0).clamp_min(1.0)).unsqueeze(-1)
    # A split with weight 0 contributes nothing even if its out holds NaN (an unwritten buffer),
    # and passes no NaN into the gradient of the others.
    used = weights > 0
    values = torch.where(used, out_partial, torch.zeros_like(out_partial))
    merged = (weights * values).sum(dim=0)
    if out is None:
        return merged.to(dtype), lse
    out.copy_(merged)
    return out, lse
