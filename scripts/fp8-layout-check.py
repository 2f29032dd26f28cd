#!/usr/bin/env python3
"""Checks the fp8 Hopper forward's data layout on the CPU (no GPU): the V transpose of
Kernels/hopper/fp8.cuh (transpose_v_stage) from the TMA-swizzled V tile into the V^T ring, the P
fragments of forward.cu (convert_p) and the PV wgmma's K-major 128-byte-swizzle operand, emulated
element by element, must give exactly P V; and the eight 16-byte rows of every ldmatrix and
stmatrix matrix of the transpose must fall in eight different bank groups (no bank conflict).
Exits 1 on a failure. Models: the e4m3 A fragment (register r of lane l in warp w holds row
16w + l/4 + 8(r % 2), k = 16(r / 2) + 4(l % 4) + byte) and the 128-byte swizzle (16-byte chunk XOR
row % 8). Run: python3 scripts/fp8-layout-check.py
"""
import numpy as np
rng = np.random.default_rng(0)
failures = 0

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
    # transpose_v_stage: per unit (16-key group K, 32-column chunk C), ldmatrix .x4 .trans reads
    # four 8x8 16-bit matrices from the lanes' row addresses, two byte permutes per register pair,
    # stmatrix .x4 writes four 8x8 matrices to the lanes' row addresses.
    def lane_constants(l):
        m, r = l // 8, l % 8
        load = (8*(m & 1) + r)*128 + 16*((m >> 1) ^ r)
        n = 16*(m >> 1) + 2*r + ((m & 1) ^ (r >> 2))
        return load, n*128 + 16*(n % 8), (0x6420 if (l//4) < 4 else 0x7531)
    def prmt(a, b, sel):
        by = [(a >> (8*i)) & 255 for i in range(4)] + [(b >> (8*i)) & 255 for i in range(4)]
        return sum(by[(sel >> (4*i)) & 7] << (8*i) for i in range(4))
    KEY_GROUPS = BN // 16; UNITS = KEY_GROUPS * 4  # per 128-column panel
    conflicts = 0
    for panel, unit in [(p, u) for p in range(DVP // 128) for u in range(UNITS)]:
        K, C = unit % KEY_GROUPS, 4*panel + unit // KEY_GROUPS
        lanes = [lane_constants(l) for l in range(32)]
        # ldmatrix: row address of matrix l // 8, row l % 8 from lane l; 16 bytes = 8 halves
        load_rows = [(C//4)*BN*128 + K*2048 + (lanes[l][0] ^ ((C % 4)*32)) for l in range(32)]
        for mtx in range(4):
            if len({(load_rows[8*mtx + r] // 16) % 8 for r in range(8)}) != 8: conflicts += 1
        half = lambda addr: int(raw[addr]) | (int(raw[addr+1]) << 8)
        regs = [[0]*4 for _ in range(32)]
        for t in range(32):
            for i in range(4):
                rows = load_rows[8*i:8*i+8]
                # .trans: lane t gets (row 2(t%4), col t/4) low, (row 2(t%4)+1, col t/4) high
                lo = half(rows[2*(t % 4)] + 2*(t // 4)); hi = half(rows[2*(t % 4) + 1] + 2*(t // 4))
                regs[t][i] = lo | (hi << 16)
        out = []
        for t in range(32):
            r0, r1, r2, r3 = regs[t]; sel = lanes[t][2]
            out.append([prmt(r0, r1, sel), prmt(r0, r1, sel ^ 0x1111), prmt(r2, r3, sel), prmt(r2, r3, sel ^ 0x1111)])
        store_rows = [(K//8)*DVP*128 + C*4096 + (lanes[l][1] ^ ((K % 8)*16)) for l in range(32)]
        for mtx in range(4):
            rows = store_rows[8*mtx:8*mtx+8]
            if len({(a // 16) % 8 for a in rows}) != 8: conflicts += 1
            for t in range(32):  # row t/4, halves 2(t%4), 2(t%4)+1 of matrix mtx
                addr = rows[t // 4] + 4*(t % 4)
                for j in range(4): vt[addr + j] = (out[t][mtx] >> (8*j)) & 255
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
    print(BN, DVP, NV, "product ok" if ok else "MISMATCH", "bank-conflicted matrix accesses:", conflicts)
    failures += (not ok) + (conflicts > 0)
raise SystemExit(1 if failures else 0)
