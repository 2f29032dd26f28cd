#!/usr/bin/env python3
"""Checks the fp8 Hopper forward's data layout on the CPU (no GPU): the V transpose of
Kernels/hopper/fp8.cuh (transpose_v_stage) from the TMA-swizzled V tile into the V^T ring, the P
fragments of forward.cu (convert_p) and the PV wgmma's K-major 128-byte-swizzle operand, emulated
element by element, must give exactly P V; and every shared-memory access of the transpose must hit
32 different banks. Models: the e4m3 A fragment (register r of lane l in warp w holds row
16w + l/4 + 8(r % 2), k = 16(r / 2) + 4(l % 4) + byte) and the 128-byte swizzle (16-byte chunk XOR
row % 8). Run: python3 scripts/fp8-layout-check.py
"""
import numpy as np
rng = np.random.default_rng(0)

def swz(row, byte): return row*128 + (byte ^ ((row & 7) << 4))
for (BN, DVP, NV) in [(128,128,128),(128,256,256),(128,128,64),(256,128,128)]:
    V = rng.integers(0, 256, size=(BN, DVP), dtype=np.int64)   # keys x columns (bytes)
    P = rng.integers(0, 7, size=(64, BN), dtype=np.int64)
    # TMA raw layout: panel p = cols [128p,128p+128), BN rows of 128 bytes
    raw = np.zeros(BN*DVP, dtype=np.int64)
    for p in range(DVP//128):
        for r in range(BN):
            for b in range(128):
                raw[p*BN*128 + swz(r,b)] = V[r, 128*p + b]
    vt = -np.ones(BN*DVP, dtype=np.int64)
    TASKS = (BN//128)*(DVP//128)*32
    banks_r = {}; conflicts = 0
    for task in range(TASKS):
        c = task % 32; p = (task//32) % (DVP//128); q = task//32//(DVP//128)
        rd = [[] for _ in range(4)]; wr = [[] for _ in range(4)]
        for lane in range(32):
            a = lane; e = lane ^ c
            r0 = 128*q + 32*(a//8) + 16*((a//4)%2) + 2*(a%4)
            src = p*BN*128
            rows = [r0, r0+1, r0+8, r0+9]
            w = []
            for i, r in enumerate(rows):
                off = src + swz(r, 4*e); rd[i].append((off//4) % 32)
                w.append([raw[off+j] for j in range(4)])
            dst = q*DVP*128; n0 = 128*p + 4*e
            for j in range(4):
                off = dst + swz(n0 + j, 4*a); wr[j].append((off//4) % 32)
                for i in range(4): vt[off + i] = w[i][j]
        for lst in rd + wr:
            if len(set(lst)) != 32: conflicts += 1
    assert (vt >= 0).all()
    # wgmma emulation
    O = np.zeros((64, NV), dtype=np.int64)
    for kk in range(BN//32):
        panel, within = kk//4, (kk%4)*32
        A = np.zeros((64, 32), dtype=np.int64)
        for w in range(4):
            for l in range(32):
                t = l % 4; ra = 16*w + l//4; rb = ra + 8
                keys = [32*kk + 2*t, 32*kk + 2*t + 1, 32*kk + 8 + 2*t, 32*kk + 9 + 2*t]
                regs = [(ra, keys), (rb, keys), (ra, [x+16 for x in keys]), (rb, [x+16 for x in keys])]
                for r, (row, ks) in enumerate(regs):
                    for i in range(4):
                        A[16*w + l//4 + 8*(r%2), 16*(r//2) + 4*t + i] = P[row, ks[i]]
        B = np.zeros((32, NV), dtype=np.int64)
        for k in range(32):
            for n in range(NV):
                B[k, n] = vt[panel*DVP*128 + swz(n, within + k)]
        O += A @ B
    ok = np.array_equal(O, P @ V[:, :NV])
    print(BN, DVP, NV, "product ok" if ok else "MISMATCH", "bank-conflicted accesses:", conflicts)
