"""The FlashAttention paper's device-memory (HBM) access model of one attention forward, per head.

Standard attention (Algorithm 0) reads Q and K (2·N·d), writes S (N²), reads S and writes P
(2·N²), reads P and V (N² + N·d) and writes O (N·d): Θ(N·d + N²) element accesses.

FlashAttention (Theorem 2) reads each K/V block once per block of Br query rows and Q, O once:
2·N·d·⌈N/Br⌉ + 2·N·d accesses. With the paper's Br = Θ(M/d) for on-chip memory M this is
Θ(N²·d²/M). A GPU with a large L2 cache serves most of the K/V re-reads from L2, so the DRAM
bytes ncu measures can sit below this model, down to the 4·N·d floor of reading each input and
writing the output once.
"""


def standard_forward_bytes(n: int, d: int, element_bytes: int, score_bytes: int) -> float:
    """Bytes of one head's standard forward: Q, K, V, O in `element_bytes`, S and P in `score_bytes`."""
    return element_bytes * (4 * n * d) + score_bytes * (4 * n * n)


def flash_forward_bytes(n: int, d: int, element_bytes: int, block_rows: int = 128) -> float:
    """Bytes of one head's FlashAttention forward with `block_rows` query rows per K/V sweep."""
    blocks = -(-n // block_rows)
    return element_bytes * (2 * n * d + 2 * n * d * blocks)

