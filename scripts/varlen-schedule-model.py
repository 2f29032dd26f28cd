#!/usr/bin/env python3
"""The list-scheduling model behind the packed varlen schedule prediction
(docs/perf-notes/features-2026-12-06.md, "Varlen >= 0.95x fixed length").

Blocks are handed to the first free SM (one Hopper block per SM) in grid order; an item costs
block + tiles x (tile + key tiles x iteration); the iteration (forward) and step (backward)
times are fitted per point to the fixed-length measurement of the 05:24 run; memory-bound parts
(memset, preprocess, convert) at BW bytes/s plus TE ms per empty small block per SM.
Usage: python3 scripts/varlen-schedule-model.py  (prints measured vs modelled ratios and the
packed schedule prediction for empty-block costs of 1, 2 and 4 us).
"""
import heapq, math
L=[1519,294,4972,1364,7204,707,324]; FIXN=4992; FB=3; SM=132
cdiv=lambda a,b:(a+b-1)//b
def listsched(costs):
    # blocks dispatched in order to the first free SM (one block per SM)
    h=[0.0]*SM; heapq.heapify(h)
    for c in costs:
        t=heapq.heappop(h); heapq.heappush(h,t+c)
    return max(h), sum(costs)/SM
# ---------------- forward ----------------
def fwd_tiles(Ls,BM,BN,causal):
    """per sequence: list of (m_block -> iters, masked iters)"""
    out=[]
    for l in Ls:
        mb=cdiv(l,BM); t=[]
        for m in range(mb):
            m0=m*BM
            hi=cdiv(l,BN) if not causal else min(cdiv(l,BN),(m0+BM-1)//BN+1)
            t.append(hi)
        out.append(t)
    return out
def fwd_items_padded(Ls,heads,BM,BN,causal):
    M=cdiv(max(Ls),BM); P=(M+1)//2; items=[]
    tiles=fwd_tiles(Ls,BM,BN,causal)
    for b,l in enumerate(Ls):
        mb=len(tiles[b])
        for h in range(heads):
            for j in range(P):
                its=[]
                for m in ([M-1-j] if M-1-j==j else [M-1-j,j]):
                    if m<mb: its.append(tiles[b][m])
                items.append(its)
    return items
def fwd_items_packed(Ls,heads,BM,BN,causal,lpt=True):
    tiles=fwd_tiles(Ls,BM,BN,causal)
    order=sorted(range(len(Ls)),key=lambda b:-Ls[b]) if lpt else range(len(Ls))
    items=[]
    for b in order:
        mb=len(tiles[b]); P=(mb+1)//2
        for h in range(heads):
            for j in range(P):
                ms=[mb-1-j] if mb-1-j==j else [mb-1-j,j]
                items.append([tiles[b][m] for m in ms])
    return items
def item_cost(its,p):
    if not its: return p['empty']
    return p['blk']+sum(p['tile']+n*p['it'] for n in its)
def fwd_time(items,p):
    return listsched([item_cost(i,p) for i in items])[0]
# ---------------- backward ----------------
def kv_blocks(Ls,BNk,BMq,causal):
    out=[]
    for l in Ls:
        t=[]
        for n in range(cdiv(l,BNk)):
            n0=n*BNk
            lo=(n0//BMq) if causal else 0
            t.append(cdiv(l,BMq)-lo)
        out.append(t)
    return out
def dq_blocks(Ls,BMq,BNk,causal):
    out=[]
    for l in Ls:
        t=[]
        for m in range(cdiv(l,BMq)):
            m0=m*BMq
            hi=cdiv(l,BNk) if not causal else min(cdiv(l,BNk),(m0+BMq-1)//BNk+1)
            t.append(hi)
        out.append(t)
    return out
def grid_padded(blocks,maxb,heads):
    # grid (x=maxb, y=heads, z=batch): x fastest
    items=[]
    for b,t in enumerate(blocks):
        for h in range(heads):
            for x in range(maxb):
                items.append(t[x] if x<len(t) else None)
    return items
def grid_packed(blocks,heads,Ls):
    order=sorted(range(len(Ls)),key=lambda b:-Ls[b])
    items=[]
    for b in order:
        for h in range(heads):
            items+=blocks[b]
    return items
def blk_time(items,p):
    return listsched([p['empty'] if s is None else p['blk']+s*p['step'] for s in items])[0]

# ---------------- calibration and prediction ----------------
meas = { # (d,causal): (vfwd, vbwd, ffwd, fbwd) ms
 (64,False):(1.376,4.928,1.156,4.136),(64,True):(0.799,2.828,0.694,2.396),
 (128,False):(1.064,3.665,0.902,3.475),(128,True):(0.597,2.166,0.497,1.895)}
def flops(Ls,h,d,causal): return sum(4*h*l*l*d*(0.5 if causal else 1) for l in Ls)
FL=[FIXN]*FB
def fwdcfg(d,c): return (192,128) if d==64 else ((128,128) if c else (128,176))
BW=2.8e12  # bytes/s, HBM3 achieved
TE=0.05e-3  # ms per empty small block per SM (preprocess/convert)
EMPTY=2.0e-3  # ms per empty Hopper block
pf=dict(blk=2e-3,tile=1.5e-3,empty=EMPTY)
pb=dict(blk=3e-3,empty=EMPTY)
SCHED=4e-3  # ms: one flash_varlen_schedule launch and its gap
out={}
for EMPTY in (1e-3,2e-3,4e-3):
  pf=dict(blk=2e-3,tile=1.5e-3,empty=EMPTY); pb=dict(blk=3e-3,empty=EMPTY)
  for (d,c),(vf,vb,ff,fb) in meas.items():
    h=2048//d; BM,BN=fwdcfg(d,c)
    fi=fwd_items_padded(FL,h,BM,BN,c)
    lo,hi=0,0.01
    for _ in range(50):
        mid=(lo+hi)/2
        if fwd_time(fi,dict(pf,it=mid))<ff: lo=mid
        else: hi=mid
    p=dict(pf,it=lo)
    wf=flops(FL,h,d,c); wv=flops(L,h,d,c)
    r=lambda t:(wv/t)/(wf/ff)
    mpad=fwd_time(fwd_items_padded(L,h,BM,BN,c),p); mpack=fwd_time(fwd_items_packed(L,h,BM,BN,c),p)+SCHED
    # scale model to measured padded: predicted new = measured * (model_pad / model_pack)
    out.setdefault((d,c,'fwd'),[]).append((r(mpad),r(mpack),(wv/vf)/(wf/ff)*mpad/mpack))
    split=d>=128
    rows_v=sum(L); rows_vpad=len(L)*max(L); rows_f=FB*FIXN
    def mem(rows_acc,rows_real,empties_pre,empties_cv):
        t=0
        if not split: t+=rows_acc*h*d*4/BW*1e3
        t+=rows_real*h*d*4/BW*1e3 + empties_pre/SM*TE
        if not split: t+=rows_real*h*d*(4+2)/BW*1e3 + empties_cv/SM*TE
        return t
    def kvdq(Ls,padded,p):
        kb=kv_blocks(Ls,128,64,c); t=0
        items=grid_padded(kb,cdiv(max(Ls),128),h) if padded else grid_packed(kb,h,Ls)
        t+=blk_time(items,p)
        if split:
            qb=dq_blocks(Ls,128,64,c)
            items=grid_padded(qb,cdiv(max(Ls),128),h) if padded else grid_packed(qb,h,Ls)
            t+=blk_time(items,dict(p,step=p['step']*0.6))
        return t
    pre_empty_v=(len(L)*cdiv(max(L),4)-sum(cdiv(l,4) for l in L))*h
    cv_empty_v=sum(4096-min(4096,cdiv(l*h*d//2,256)) for l in L)
    memf=mem(rows_f,rows_f,0,0)
    lo,hi=0,0.01
    for _ in range(50):
        mid=(lo+hi)/2
        if memf+kvdq(FL,True,dict(pb,step=mid))<fb: lo=mid
        else: hi=mid
    p=dict(pb,step=lo)
    rb=lambda t:(wv/t)/(wf/fb)
    bpad=mem(rows_vpad,rows_v,pre_empty_v,cv_empty_v)+kvdq(L,True,p)
    bpack=mem(rows_v,rows_v,0,0)+kvdq(L,False,p)+SCHED*(2 if split else 1)
    out.setdefault((d,c,'bwd'),[]).append((rb(bpad),rb(bpack),(wv/vb)/(wf/fb)*bpad/bpack))
import math
g_meas=[];g_new=[]
for k,v in out.items():
    d,c,ps=k
    meas_r={'fwd':0,'bwd':1}[ps]
    vf,vb,ff,fb=meas[(d,c)]
    wf=flops(FL,2048//d,d,c); wv=flops(L,2048//d,d,c)
    m=(wv/vf)/(wf/ff) if ps=='fwd' else (wv/vb)/(wf/fb)
    print(f"d{d} {'causal' if c else 'full'} {ps}: measured {m:.3f}; model padded {min(x[0] for x in v):.3f}-{max(x[0] for x in v):.3f}; model packed {min(x[1] for x in v):.3f}-{max(x[1] for x in v):.3f}; measured x model gain {min(x[2] for x in v):.3f}-{max(x[2] for x in v):.3f} (mid {v[1][2]:.3f})")
    g_meas.append(m); g_new.append(v[1][2])
gm=lambda a: math.exp(sum(map(math.log,a))/len(a))
print("geomean measured %.3f predicted(mid) %.3f"%(gm(g_meas),gm(g_new)))
