"""Where each rank's tokens sit in the sequence, and which part of which K/V block each rank
attends to at each ring step.

"contiguous": the sequence cut into W equal chunks, rank r holds chunk r. Causal attention then
leaves rank W-1 with W blocks of work and rank 0 with one.
"zigzag": the sequence cut into 2W equal chunks, rank r holds chunks r and 2W-1-r (in that order,
as one tensor of two halves), so every rank has the same causal work: ring-flash-attention's and
Megatron's load-balanced layout.

The ring: at step s rank r holds the K/V block of rank (r - s) mod W. What it computes with it:

  not causal: all of its queries against all of the block's keys.
  causal, contiguous: the block of an earlier rank in full, its own block causally (the diagonal),
    a later rank's block not at all (wholly in the future).
  causal, zigzag: its own block causally; an earlier rank's (source < r) front half only, which
    precedes both of its chunks (the back half, chunk 2W-1-source, lies after both); a later
    rank's (source > r) whole block with its back half of queries only: chunk 2W-1-r follows both
    of the source's chunks, and chunk r precedes both.

With these rules every block computed is either fully visible or the diagonal, whose local
order is the global order (chunk r before chunk 2W-1-r), so the library's causal mask is exact.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

LAYOUTS = ("zigzag", "contiguous")

# Parts of a rank's rows.
ALL = "all"
FRONT = "front"  # zigzag: chunk r (queries) or chunk source (keys)
BACK = "back"  # zigzag: chunk 2W-1-r


class Block(NamedTuple):
    """One ring step's work: which of the rank's query rows meet which rows of the K/V block."""

    queries: str  # ALL or BACK
    keys: str  # ALL or FRONT
    causal: bool


def check_layout(layout) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"flash_attention_swift: layout must be one of {LAYOUTS}, got {layout!r}")


def block(layout: str, causal: bool, rank: int, source: int) -> Optional[Block]:
    """The work of `rank` with the K/V block of `source`, None when there is none."""
    if not causal:
        return Block(ALL, ALL, False)
    if source == rank:
        return Block(ALL, ALL, True)
    if layout == "contiguous":
        return Block(ALL, ALL, False) if source < rank else None
    if source < rank:
        return Block(ALL, FRONT, False)
    return Block(BACK, ALL, False)


def chunk_count(layout: str, world_size: int) -> int:
    """How many equal chunks the sequence (each sequence, for varlen) is cut into."""
    return 2 * world_size if layout == "zigzag" else world_size


def chunk_indices(layout: str, rank: int, world_size: int) -> tuple[int, ...]:
    """The chunks that rank `rank` holds, in its local order."""
    if layout == "zigzag":
        return (rank, 2 * world_size - 1 - rank)
    return (rank,)


def check_divisible(length: int, layout: str, world_size: int, what: str) -> int:
    """The chunk length of a sequence of `length` tokens; raises unless it divides evenly."""
    chunks = chunk_count(layout, world_size)
    if length % chunks:
        raise ValueError(
            f"flash_attention_swift: {what} = {length} must be a multiple of {chunks} for layout {layout!r} "
            f"over {world_size} ranks ({'2 x ' if layout == 'zigzag' else ''}world size equal chunks)"
        )
    return length // chunks
