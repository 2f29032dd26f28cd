#!/usr/bin/env python3
"""Checks the lane arithmetic of the CUDA dropout (Kernels/hopper/dropout.cuh: quad_keep_bits,
quad_share_flags and the backward's transposed_keep_bits; Kernels/common/dropout.cuh: keep_bits shared, per-lane and generic) against the
per-element rule of fa_philox.h (fa_dropout_keeps), in a Python model of both, including the SWAR
byte compare of fa_dropout_bytes_below and the flag layout of fa_dropout_lane_flags: every lane t
of a quad, every row, bit 2c + e == keeps(row, 8 (group0 + c) + 2t + e). No GPU; exit 0 = agree."""
import random
import sys

M = 0xFFFFFFFF


def philox(c0, c1, c2, c3, k0, k1):
    for r in range(10):
        if r > 0:
            k0 = (k0 + 0x9E3779B9) & M
            k1 = (k1 + 0xBB67AE85) & M
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M, (p0 >> 32) ^ c3 ^ k1, p0 & M
    return [c0, c1, c2, c3]


def words(seed, offset, bh, row, group):
    return philox(group & M, row & M, bh & M, offset & M, seed & M, ((seed >> 32) + (offset >> 32)) & M)


def keeps(seed, offset, thr, bh, row, col):
    """fa_dropout_keeps: slot 8h + 2i + e is byte i of word 2h + e."""
    w = words(seed, offset, bh, row, col >> 4)
    slot = col & 15
    word = ((slot >> 3) << 1) | (slot & 1)
    return ((w[word] >> (8 * ((slot >> 1) & 3))) & 0xFF) < thr


def bytes_below(word, thr):
    """fa_dropout_bytes_below, bit for bit (32-bit wraparound)."""
    t = (thr * 0x01010101) & M
    low = ((word | 0x80808080) - (t & 0x7F7F7F7F)) & M
    return ((~word & t) | (~(word ^ t) & ~low)) & M


def lane_flags(w, thr):
    """fa_dropout_lane_flags: bit 4i + b is byte i of word b below thr."""
    merged = (bytes_below(w[3], thr) & 0x80808080) | ((bytes_below(w[2], thr) >> 1) & 0x40404040)
    merged |= ((bytes_below(w[1], thr) >> 2) & 0x20202020) | ((bytes_below(w[0], thr) >> 3) & 0x10101010)
    nibbles = (merged >> 4) & 0x0F0F0F0F
    pairs = nibbles | (nibbles >> 4)
    return (pairs & 0xFF) | ((pairs >> 8) & 0xFF00)


def check(bits_of, chunks, seed, offset, thr, bh, rows, group0, what):
    for t in range(4):
        for row in rows:
            bits = bits_of(t, row)
            for c in range(chunks):
                for e in range(2):
                    key = 8 * (group0 + c) + 2 * t + e
                    got = (bits >> (2 * c + e)) & 1
                    if got != keeps(seed, offset, thr, bh, row, key):
                        sys.exit(f"{what}: chunks {chunks} lane {t} row {row} chunk {c} e {e}: {got}")


def hopper(chunks, seed, offset, thr, bh, row_a, group0):
    """quad_keep_bits + quad_share_flags (group0 even)."""
    calls = (chunks + 1) // 2
    groups = (calls + 3) // 4
    width = 64 if groups > 2 else 32
    mask = (1 << width) - 1
    own = {}
    for t in range(4):
        oa = ob = 0
        for j in range(groups - 1, -1, -1):
            call = (group0 >> 1) + 4 * j + t
            oa = ((oa << 16) | lane_flags(words(seed, offset, bh, row_a, call), thr)) & mask
            ob = ((ob << 16) | lane_flags(words(seed, offset, bh, row_a + 8, call), thr)) & mask
        own[t] = {row_a: oa, row_a + 8: ob}
    nibbles = 0x000F000F000F000F & mask

    def bits_of(t, row):
        bits = 0
        for s in range(4):
            bits |= (((own[s][row] >> (4 * t)) & nibbles) << (4 * s)) & mask
        return bits

    check(bits_of, chunks, seed, offset, thr, bh, (row_a, row_a + 8), group0, "hopper")


def fa2(chunks, share, seed, offset, thr, bh, row, group0):
    """Dropout::keep_bits: the shared path (chunks and group0 even), the per-lane path, the generic one."""
    calls = chunks // 2

    def bits_of(t, row):
        if share and chunks % 2 == 0 and group0 % 2 == 0:
            width = 64 if chunks > 16 else 32
            bits = 0
            for j in range((calls + 3) // 4):
                flags = [lane_flags(words(seed, offset, bh, row, (group0 >> 1) + 4 * j + s), thr) for s in range(4)]
                for s in range(min(calls, 4)):
                    bits |= ((flags[s] >> (4 * t)) & 0xF) << (4 * (4 * j + s))
            return bits & ((1 << width) - 1)
        if chunks % 2 == 0 and group0 % 2 == 0:
            bits = 0
            for k in range(chunks // 2 - 1, -1, -1):
                bits = (bits << 4) | ((lane_flags(words(seed, offset, bh, row, (group0 >> 1) + k), thr) >> (4 * t)) & 0xF)
            return bits
        bits = 0
        for call in range(group0 >> 1, ((group0 + chunks - 1) >> 1) + 1):
            nibble = (lane_flags(words(seed, offset, bh, row, call), thr) >> (4 * t)) & 0xF
            for h in range(2):
                c = 2 * call + h - group0
                if 0 <= c < chunks:
                    bits |= ((nibble >> (2 * h)) & 3) << (2 * c)
        return bits

    check(bits_of, chunks, seed, offset, thr, bh, (row,), group0, f"fa2 share={share}")


def transposed(seed, offset, thr, bh, m0, key_group, mutate=None):
    """transposed_keep_bits (the backward's key/value kernel): lane (g, t) makes queries
    m0 + 8g + 2t + e; lane (g', t) holds keys 16 key_group + g' and + 8 against queries
    m0 + 8c + 2t + e: bit 4c + 2h + e must be keeps(query, key 16 key_group + g' + 8h)."""
    own = []
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        row = m0 + 8 * g + 2 * t
        f0 = lane_flags(words(seed, offset, bh, row, key_group), thr)
        f1 = lane_flags(words(seed, offset, bh, row + 1, key_group), thr)
        own.append(f0 | (f1 << 16))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        shift = 4 * (g >> 1) + (g & 1)
        if mutate == "shift":
            shift = 4 * (g & 3) + (g >> 2)
        bits = 0
        for c in range(8):
            y = own[4 * c + t if mutate != "source" else 4 * t + (c & 3)] >> shift
            bits |= ((y & 5) | ((y >> 15) & 10)) << (4 * c)
        for c in range(8):
            for h in range(2):
                for e in range(2):
                    query, key = m0 + 8 * c + 2 * t + e, 16 * key_group + g + 8 * h
                    if ((bits >> (4 * c + 2 * h + e)) & 1) != keeps(seed, offset, thr, bh, query, key):
                        return False
    return True


random.seed(1)
# The SWAR compare alone, every threshold, random words and the byte edges.
for thr in range(256):
    for word in [random.getrandbits(32) for _ in range(64)] + [0, M, 0x7F7F7F7F, 0x80808080, thr * 0x01010101]:
        got = bytes_below(word, thr)
        for b in range(4):
            if ((got >> (8 * b + 7)) & 1) != (((word >> (8 * b)) & 0xFF) < thr):
                sys.exit(f"bytes_below({word:#x}, {thr}) byte {b}")
n = 0
rnd = lambda: (random.getrandbits(64), random.getrandbits(64), random.randrange(0, 256), random.getrandbits(32))
for chunks in (8, 12, 16, 22, 24, 32):
    for _ in range(4):
        seed, offset, thr, bh = rnd()
        hopper(chunks, seed, offset, thr, bh, random.randrange(0, 100000), 2 * random.randrange(0, 1000))
        n += 1
for chunks in (1, 2, 4, 8, 16, 32):
    for share in (True, False):
        for _ in range(3):
            seed, offset, thr, bh = rnd()
            fa2(chunks, share, seed, offset, thr, bh, random.randrange(0, 100000), random.randrange(0, 2000))
            n += 1
# Extremes: drop all, keep all but one value, threshold 1.
hopper(16, 1, 2, 0, 0, 0, 0)
hopper(22, 3, 4, 255, 7, 5, 2)
fa2(8, True, 5, 6, 1, 3, 9, 100)
# The backward's transposed layout, and two mutations of it that the check must catch.
for _ in range(12):
    seed, offset, thr, bh = rnd()
    if not transposed(seed, offset, max(thr, 1), bh, 64 * random.randrange(0, 500), random.randrange(0, 4000)):
        sys.exit("transposed_keep_bits disagrees with the per-element rule")
    n += 1
for mutation in ("shift", "source"):
    if transposed(11, 12, 128, 5, 64, 9, mutate=mutation):
        sys.exit(f"the transposed check missed the mutation {mutation}")
print("ok", n + 3)
