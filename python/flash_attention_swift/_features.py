"""ALiBi slopes and dropout's generator state for a call (FlashAttention-2's `alibi_slopes` and
`dropout_p`).

The library's dropout mask is Philox-4x32-10 of a (seed, offset) pair and each element's
(batch, head, query, key), the same on every backend; the backward regenerates it from the same
pair. As in FlashAttention-2, the pair comes from torch's default generator of q's device, so
`torch.manual_seed(s)` reproduces a call and consecutive calls differ: on CUDA the generator's
seed and Philox offset (advanced by 4 per call, without a synchronization), on the CPU two
numbers drawn from torch.default_generator.
"""

from __future__ import annotations

import torch

_OFFSET_STEP = 4  # the CUDA generator's offsets move in multiples of 4


def dropout_state(q: torch.Tensor, dropout_p: float) -> tuple[float, int, int]:
    """(p, seed, offset) of one call; (0.0, 0, 0) when dropout is off. Seeds and offsets are kept
    below 2^63 (the custom ops carry them as int64)."""
    p = float(dropout_p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"flash_attention_swift: dropout_p must be in [0, 1), got {dropout_p}")
    if p == 0.0:
        return 0.0, 0, 0
    if q.is_cuda:
        index = q.get_device()
        generator = torch.cuda.default_generators[index]
        get_offset = getattr(generator, "get_offset", None)
        if get_offset is not None:
            offset = get_offset()
            generator.set_offset(offset + _OFFSET_STEP)
            return p, generator.initial_seed() & (2**63 - 1), offset & (2**63 - 1)
        seed, offset = torch.randint(0, 2**62, (2,), device=q.device, generator=generator).tolist()
        return p, seed, offset
    seed, offset = torch.randint(0, 2**62, (2,), generator=torch.default_generator).tolist()
    return p, seed, offset


def host_slopes(alibi_slopes, q: torch.Tensor) -> torch.Tensor | None:
    """The slopes as a contiguous float32 CPU tensor of shape (heads_q) or (batch, heads_q), or
    None. The library reads slopes from host memory (a CUDA tensor is copied, which waits for
    its stream); their shape is checked by the library against the call."""
    if alibi_slopes is None:
        return None
    if not isinstance(alibi_slopes, torch.Tensor):
        raise TypeError(
            f"flash_attention_swift: alibi_slopes must be a torch.Tensor (heads) or (batch, heads), got "
            f"{type(alibi_slopes).__name__}"
        )
    if alibi_slopes.dtype != torch.float32:
        raise TypeError(f"flash_attention_swift: alibi_slopes must be torch.float32, got {alibi_slopes.dtype}")
    if alibi_slopes.dim() not in (1, 2):
        raise ValueError(
            f"flash_attention_swift: alibi_slopes must be (heads) or (batch, heads), got shape {tuple(alibi_slopes.shape)}"
        )
    return alibi_slopes.detach().to("cpu").contiguous()
