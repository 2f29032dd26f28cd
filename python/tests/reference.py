"""Standard attention in torch (the N x N matrices stored) as the reference, and the pass rule.

The rule is FlashAttention's: an fp16/bf16 result may be off the float64 reference by at most
twice the error of a standard attention computed in the same precision (scores, softmax and
output rounded to the storage dtype, as FlashAttention's `attention_ref(upcast=False)`), plus a
small absolute epsilon; fp32 needs a relative L2 error of at most 1e-4 (plus a 1e-6 RMS floor). NaN never passes.
"""

from __future__ import annotations

import math

import torch


def visible(seqlen_q: int, seqlen_k: int, causal: bool, window: tuple[int, int], device) -> torch.Tensor:
    """Bool (seqlen_q, seqlen_k): key j visible to query i, bottom-right aligned."""
    i = torch.arange(seqlen_q, device=device).unsqueeze(1)
    j = torch.arange(seqlen_k, device=device).unsqueeze(0)
    diagonal = i + seqlen_k - seqlen_q
    left, right = window
    if causal:
        right = 0
    mask = torch.ones(seqlen_q, seqlen_k, dtype=torch.bool, device=device)
    if left >= 0:
        mask &= j >= diagonal - left
    if right >= 0:
        mask &= j <= diagonal + right
    return mask


def attention(
    q, k, v, *, scale=None, causal=False, window=(-1, -1), softcap=0.0, compute_dtype=torch.float64, alibi=None,
    keep=None, dropout_p=0.0,
):
    """(out, lse) of standard attention with FlashAttention's semantics, computed in
    `compute_dtype` (float64 for the reference, the storage dtype for the same-precision one).
    Differentiable. out has q's layout (batch, seqlen_q, heads, head_dim_v) in compute_dtype;
    lse is float64 (batch, heads, seqlen_q); rows with no visible key give out 0, lse -inf."""
    batch, seqlen_q, heads_q, head_dim = q.shape
    seqlen_k, heads_kv = k.shape[1], k.shape[2]
    group = heads_q // heads_kv
    scale = head_dim ** -0.5 if scale is None else scale
    q, k, v = (t.to(compute_dtype) for t in (q, k, v))
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if softcap > 0:
        scores = softcap * torch.tanh(scores / softcap)
    if alibi is not None:
        # (heads) or (batch, heads): -slope * |i + seqlen_k - seqlen_q - j|, after the softcap.
        slopes = alibi.to(compute_dtype).to(q.device).expand(batch, heads_q).reshape(batch, heads_q, 1, 1)
        i = torch.arange(seqlen_q, device=q.device).unsqueeze(1)
        j = torch.arange(seqlen_k, device=q.device).unsqueeze(0)
        scores = scores - slopes * (i + seqlen_k - seqlen_q - j).abs().to(compute_dtype)
    mask = visible(seqlen_q, seqlen_k, causal, window, q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores.double(), dim=-1)
    probabilities = torch.softmax(scores, dim=-1)
    probabilities = torch.nan_to_num(probabilities, nan=0.0)  # rows with no visible key
    if keep is not None:
        # Dropout given the keep mask (batch, heads, seqlen_q, seqlen_k); the LSE stays undropped.
        probabilities = probabilities * keep.to(q.device) / (1 - dropout_p)
    out = torch.einsum("bhqk,bkhd->bqhd", probabilities.to(compute_dtype), v)
    return out, lse


def _max_error(actual: torch.Tensor, reference: torch.Tensor) -> float:
    return (actual.double() - reference.double()).abs().max().item() if actual.numel() else 0.0


def check(name: str, actual: torch.Tensor, reference: torch.Tensor, same_precision: torch.Tensor | None) -> None:
    """Asserts FlashAttention's rule for one tensor; `same_precision` is None for fp32."""
    assert actual.shape == reference.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(reference.shape)}"
    assert torch.isfinite(actual).all(), f"{name}: not finite ({torch.isnan(actual).sum().item()} NaN)"
    if actual.numel() == 0:
        return
    norm = reference.double().norm().item()
    if same_precision is None:
        error = (actual.double() - reference.double()).norm().item()
        # The floor (1e-6 RMS per element) covers a reference that is exactly zero, such as the
        # gradient of a query that sees a single key, where fp32 accumulation leaves ~1e-7.
        floor = 1e-6 * actual.numel() ** 0.5
        assert error <= 1e-4 * norm + floor, (
            f"{name}: L2 error {error:.3g} > 1e-4 x the reference's norm {norm:.3g} + {floor:.2g}"
        )
        return
    # The Swift rule (VerificationRule): relative L2 within 2x the same-precision standard
    # attention's plus 1e-6. Not the largest element's error: over fresh inputs every run, the
    # largest of thousands of 16-bit roundings is heavy-tailed (2x the baseline's largest failed
    # 2 of 9 runs of the whole suite, measured), where the L2 error is steady.
    if norm == 0:
        # The Swift pass rule's case: where the reference is exactly zero (a query that sees one
        # key has zero dq and dk), one unit roundoff of the storage dtype, per element. The GPU
        # backward's D = rowsum(dO * O) comes from the rounded O, so dP - D is ~1e-6, not 0.
        error = _max_error(actual, reference)
        allowed = torch.finfo(actual.dtype).eps / 2 + epsilon(reference)
        assert error <= allowed, f"{name}: max error {error:.3g} > {allowed:.3g} where the reference is 0"
        return
    error = (actual.double() - reference.double()).norm().item() / norm
    baseline = (same_precision.double() - reference.double()).norm().item() / norm
    allowed = 2 * baseline + 1e-6
    assert error <= allowed, (
        f"{name}: relative L2 error {error:.3g} > {allowed:.3g} (2x the same-precision reference's {baseline:.3g} + 1e-6)"
    )


def epsilon(reference: torch.Tensor) -> float:
    """A few float32 roundings at the reference's magnitude: room for fp32 accumulation where the
    same-precision reference happens to be exact (a single visible key, an all-zero gradient)."""
    return 1e-6 + 8 * 2.0 ** -24 * reference.abs().max().item()


def check_lse(actual: torch.Tensor, reference: torch.Tensor) -> None:
    """LSE is float32 from fp32 accumulation whatever the storage: 1e-4 relative, -inf exactly
    where no key is visible."""
    assert actual.dtype == torch.float32, f"lse dtype {actual.dtype}"
    assert actual.shape == reference.shape, f"lse shape {tuple(actual.shape)} != {tuple(reference.shape)}"
    assert not torch.isnan(actual).any(), "lse has NaN"
    empty = torch.isneginf(reference)
    assert torch.equal(torch.isneginf(actual), empty), "lse: -inf rows differ from the rows with no visible key"
    finite = ~empty
    if finite.any():
        difference = (actual.double()[finite] - reference[finite]).abs()
        allowed = 1e-4 * reference[finite].abs().clamp(min=1.0)
        assert (difference <= allowed).all(), f"lse: max error {difference.max().item():.3g}"


def random_inputs(batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, head_dim_v, dtype, device, generator=None):
    """q, k, v (contiguous, (batch, seqlen, heads, dim)) with fresh random values."""
    shapes = (
        (batch, seqlen_q, heads_q, head_dim),
        (batch, seqlen_k, heads_kv, head_dim),
        (batch, seqlen_k, heads_kv, head_dim_v),
    )
    return tuple(torch.randn(shape, generator=generator, device=device).to(dtype) for shape in shapes)


def poisoned_like(tensor: torch.Tensor) -> torch.Tensor:
    return torch.full_like(tensor, math.nan)


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q=None, seqused_k=None, *, compute_dtype=torch.float64, **options):
    """(out, lse) of a packed batch, sequence by sequence with `attention` (FlashAttention's
    rule per sequence): out (total_q, heads, head_dim_v) in compute_dtype, lse float64 (heads,
    total_q); rows past seqused_q[b] or past the last sequence get out 0 and lse -inf.
    Differentiable; the index arguments are lists of ints."""
    heads_q, head_dim_v = q.shape[1], v.shape[2]
    outs, lses = [], []

    def empty_rows(count):
        outs.append(torch.zeros(count, heads_q, head_dim_v, dtype=compute_dtype, device=q.device))
        lses.append(torch.full((heads_q, count), -math.inf, dtype=torch.float64, device=q.device))

    for b in range(len(cu_seqlens_q) - 1):
        start_q, end_q = cu_seqlens_q[b], cu_seqlens_q[b + 1]
        start_k, end_k = cu_seqlens_k[b], cu_seqlens_k[b + 1]
        used_q = seqused_q[b] if seqused_q is not None else end_q - start_q
        used_k = seqused_k[b] if seqused_k is not None else end_k - start_k
        out, lse = attention(
            q[start_q : start_q + used_q].unsqueeze(0),
            k[start_k : start_k + used_k].unsqueeze(0),
            v[start_k : start_k + used_k].unsqueeze(0),
            compute_dtype=compute_dtype,
            **options,
        )
        outs.append(out[0])
        lses.append(lse[0])
        empty_rows(end_q - start_q - used_q)
    empty_rows(q.shape[0] - cu_seqlens_q[-1])
    return torch.cat(outs, dim=0), torch.cat(lses, dim=1)
