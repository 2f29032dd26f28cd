#!/usr/bin/env python3
"""Checks the lane arithmetic of Kernels/hopper/dropout.cuh against the per-element rule of fa_philox.h
(fa_dropout_keeps), in a Python model of both: for BN/8 = 8, 12, 16, 22, 24, 32 chunks, every lane t of a
quad, both rows: bit 2c + e of quad_keep_bits == keeps(row, 8 (group0 + c) + 2t + e). No GPU; exit 0 = agree."""
import random
M=0xffffffff
def philox(c0,c1,c2,c3,k0,k1):
    for r in range(10):
        if r>0: k0=(k0+0x9E3779B9)&M; k1=(k1+0xBB67AE85)&M
        p0=0xD2511F53*c0; p1=0xCD9E8D57*c2
        hi0,lo0=p0>>32,p0&M; hi1,lo1=p1>>32,p1&M
        c0,c1,c2,c3 = hi1^c1^k0, lo1, hi0^c3^k1, lo0
    return [c0,c1,c2,c3]
def words(seed,offset,bh,row,group):
    return philox(group&M,row&M,bh&M,offset&M,seed&M,((seed>>32)+(offset>>32))&M)
def keeps(seed,offset,thr,bh,row,col):
    w=words(seed,offset,bh,row,col>>3); slot=col&7
    return ((w[slot>>1]>>((slot&1)*16))&0xffff) < thr
def chunk_bits(w,thr):
    bound=(thr<<16)&M; b=0
    for i in range(4):
        b |= (1 if ((w[i]<<16)&M) < bound else 0) << (2*i)
        b |= (2 if w[i] < bound else 0) << (2*i)
    return b
def run(chunks, seed, offset, thr, bh, row_a, group0):
    groups=(chunks+3)//4
    wide = groups>4
    mask = (1<<64)-1 if wide else M
    own={}
    for t in range(4):
        oa=ob=0
        for j in range(groups):
            g=group0+4*j+t
            oa |= chunk_bits(words(seed,offset,bh,row_a,g),thr) << (8*j)
            ob |= chunk_bits(words(seed,offset,bh,row_a+8,g),thr) << (8*j)
        own[t]=(oa&mask,ob&mask)
    pairs=0x0303030303030303 & mask
    for t in range(4):
        for r in (0,1):
            bits=0
            for s in range(4):
                x=own[s][r]
                bits |= (((x>>(2*t))&pairs)<<(2*s)) & mask
            row=row_a+8*r
            for c in range(chunks):
                for e in range(2):
                    key=8*(group0+c)+2*t+e
                    assert ((bits>>(2*c+e))&1) == keeps(seed,offset,thr,bh,row,key), (chunks,t,r,c,e)
random.seed(1)
n=0
for chunks in (8,12,16,22,24,32):
    for _ in range(6):
        run(chunks, random.getrandbits(64), random.getrandbits(64), random.randrange(0,65536), random.getrandbits(32), random.randrange(0,100000), random.randrange(0,5000)//8*0+random.randrange(0,2000))
        n+=1
# extremes
run(16, 1, 2, 0, 0, 0, 0); run(22, 3, 4, 65535, 7, 5, 1); run(8, 5, 6, 1, 3, 9, 100)
print("ok", n+3)
