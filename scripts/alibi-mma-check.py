#!/usr/bin/env python3
"""Models the ALiBi k-step of the Hopper kernels (FA_ALIBI_MMA, Kernels/hopper/alibi.cuh) element by
element and checks the bias it adds against float64, for the forward (column part) and the
backward (column part and per-key remainder), bf16 and fp16, both assignments of the descriptor's
two byte offsets (they are equal, so either reading must give the same B).

    scripts/alibi-mma-check.py

What is modelled: the panel as fill_alibi_panel / fill_alibi_bwd_panel write it (byte by byte), B
read N-major without swizzle (core matrix (k-half, key group) at k-half * LBO + group * SBO, row
k % 8 at 16 bytes, key n % 8 at 2 bytes), A's register fragment as alibi_mma_fragment /
alibi_bwd_fragment build it (lane t: k 2t, 2t + 1 of rows g and g + 8; k 8-15 zero), split3's
rounding to the storage type, and the products summed in float64 (the tensor cores' fp32 sum of
three to six exact products adds at most a few fp32 roundings). Exit status 1 on any mismatch.
"""
import sys
import numpy as np


def round_to(x, dtype):
    x = np.float32(x)
    if dtype == "fp16":
        return float(np.float16(x))
    bits = np.array([x], dtype=np.float32).view(np.uint32)[0]
    bits = (int(bits) + 0x7FFF + ((int(bits) >> 16) & 1)) & 0xFFFF0000  # round to nearest even
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def split3(x, dtype):
    x = np.float32(x)
    hi = round_to(x, dtype)
    r1 = np.float32(x - np.float32(hi))
    mid = round_to(r1, dtype)
    lo = round_to(np.float32(r1 - np.float32(mid)), dtype)
    return [hi, mid, lo]


def forward_panel(bn, dtype):
    elements = {}
    for w in range((bn // 8 + 1) * 128 // 4):
        byte = 4 * w
        key = byte // 128 * 8 + byte % 16 // 2
        elements[byte], elements[byte + 2] = round_to(key, dtype), round_to(key + 1, dtype)
    return elements


def backward_panel(bm, dtype):
    elements = {}
    for w in range((bm // 8 + 1) * 128 // 4):
        byte = 4 * w
        krow, column = byte % 128 // 16, byte // 128 * 8 + byte % 16 // 2
        lo, hi = (column, column + 1) if krow < 3 else (1.0, 1.0) if krow < 6 else (0.0, 0.0)
        elements[byte], elements[byte + 2] = round_to(lo, dtype), round_to(hi, dtype)
    return elements


def read_b(panel, n, lbo, sbo):
    """B[k][c] for k 0-15, c < n, N-major, no swizzle."""
    b = np.zeros((16, n))
    for k in range(16):
        for c in range(n):
            b[k, c] = panel[(k // 8) * lbo + (c // 8) * sbo + (k % 8) * 16 + (c % 8) * 2]
    return b


def a_from_fragments(fragments):
    """fragments[lane] = (reg0 pair, reg1 pair): k 2t, 2t + 1 of rows g and g + 8 (16 rows x 16 k)."""
    a = np.zeros((16, 16))
    for lane in range(32):
        g, t = lane // 4, lane % 4
        (r0a, r0b), (r1a, r1b) = fragments[lane]
        a[g, 2 * t], a[g, 2 * t + 1] = r0a, r0b
        a[g + 8, 2 * t], a[g + 8, 2 * t + 1] = r1a, r1b
    return a


def check_forward(dtype, bn, slope, side):
    x = slope if side > 0 else -slope
    part = split3(x, dtype)
    fragments = []
    for lane in range(32):
        t = lane % 4
        pair = (part[0], part[1]) if t == 0 else (part[2], 0.0) if t == 1 else (0.0, 0.0)
        fragments.append((pair, pair))
    a = a_from_fragments(fragments)
    panel = forward_panel(bn, dtype)
    worst = 0.0
    for lbo, sbo in [(128, 128)]:
        acc = a @ read_b(panel, bn, lbo, sbo)
        want = x * np.arange(bn)[None, :].repeat(16, 0)
        worst = max(worst, float(np.max(np.abs(acc - want))))
    return worst, abs(x) * bn


def check_backward(dtype, bm, slope, side, m0, offset, key_a):
    s = -slope if side > 0 else slope
    slope_part = split3(s, dtype)
    fragments = []
    for lane in range(32):
        g, t = lane // 4, lane % 4
        rows = []
        for key in (key_a + g, key_a + g + 8):
            rest = split3(np.float32(s) * np.float32(m0 + offset - key), dtype)
            k = slope_part + rest
            rows.append((k[2 * t], k[2 * t + 1]) if t < 3 else (0.0, 0.0))
        fragments.append(tuple(rows))
    a = a_from_fragments(fragments)
    acc = a @ read_b(backward_panel(bm, dtype), bm, 128, 128)
    keys = key_a + np.arange(16)[:, None]
    queries = m0 + np.arange(bm)[None, :]
    want = s * (queries + offset - keys)  # -side slope d, d = query + offset - key
    return float(np.max(np.abs(acc - want))), float(np.max(np.abs(want)))


def main():
    failures = 0
    rng = np.random.default_rng(7)
    for dtype in ["bf16", "fp16"]:
        for bn in [64, 96, 128, 176, 256]:
            for _ in range(20):
                slope = float(rng.uniform(0.001, 12.0))
                for side in (1, -1):
                    err, scale = check_forward(dtype, bn, slope, side)
                    if err > 4e-7 * scale + 1e-30:
                        print(f"forward {dtype} bn {bn} slope {slope} side {side}: error {err:.3g} of {scale:.3g}")
                        failures += 1
    for _ in range(200):
        slope = float(rng.uniform(0.001, 12.0))
        m0 = int(rng.integers(0, 16384 // 64)) * 64
        key_a = int(rng.integers(0, 16384 // 16)) * 16
        offset = int(rng.integers(-4096, 4096))
        side = 1 if m0 + offset >= key_a + 15 else -1
        err, scale = check_backward("bf16", 64, slope, side, m0, offset, key_a)
        if err > 4e-7 * scale + 1e-30:
            print(f"backward slope {slope} m0 {m0} key {key_a} offset {offset}: error {err:.3g} of {scale:.3g}")
            failures += 1
    print("alibi k-step model:", "ok" if failures == 0 else f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
