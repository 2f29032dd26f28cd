"""Backward tile candidates per head dim (the Swift table's choice is "table")."""


def pad32(x):
    return (x + 31) // 32 * 32


def grid(rows, cols, warps, row_quantum, col_quantum, also=None):
    """Warps along rows for a rows x cols GEMM: the smallest warp-tile perimeter, ties to
    more warps along rows (mirrors AttentionKernelKey.backwardWarpRows)."""
    best = None
    for wr in (1, 2, 4, 8):
        if warps % wr:
            continue
        wc = warps // wr
        if rows % (wr * row_quantum) or cols % (wc * col_quantum) or (also and also % (wc * col_quantum)):
            continue
        per = rows // wr + cols // wc
        if best is None or per <= best[0]:
            best = (per, wr)
    return best[1]


def cfg(d, dv, bm, bn, warps, double=True, **over):
    dp, dvp = pad32(d), pad32(dv)
    width = max(dp, dvp)
    c = dict(d=d, dv=dv, bm=bm, bn=bn, warps=warps, double=double,
             wm_s=grid(bm, bn, warps, 16, 8), wn_kv=grid(bn, width, warps, 16, 8, also=min(dp, dvp)), wm_q=grid(bm, dp, warps, 16, 8))
    c.update(over)
    return c


LIMITS = {"sm_80": 163 * 1024, "sm_87": 163 * 1024, "sm_86": 99 * 1024, "sm_89": 99 * 1024}


def table(d, dv, arch="sm_90a", dq_bulk=None):
    """The H100/A100 table tile with the Swift key's plan (AttentionKernelKey.backwardPlan):
    on sm_90 bulk dQ reductions with two Q/dO buffers, else with the pieces in the Q/dO buffer,
    else with one buffer; atomics before sm_90. dq_bulk forces a reduction mode (0/1/2)."""
    import kernel_source as ks
    width = max(pad32(d), pad32(dv))
    if width <= 64:
        t = cfg(d, dv, 128, 128, 8)
    elif width <= 128:
        t = cfg(d, dv, 64, 128, 8)
    else:
        t = cfg(d, dv, 64, 64, 8)
    limit = LIMITS.get(arch, 227 * 1024)
    fits = lambda mode, double: ks.smem_bytes(dict(t, dq_bulk=mode, double=double)) <= limit
    if dq_bulk is not None:
        plans = [(dq_bulk, True), (dq_bulk, False)] if dq_bulk != 2 else [(2, True)]
    elif arch.startswith("sm_9") or arch.startswith("sm_1"):
        plans = [(1, True)] + ([(2, True)] if pieces_fit_query_buffer(t) else []) + [(1, False), (0, True), (0, False)]
    else:
        plans = [(0, True), (0, False)]
    mode, double = next((p for p in plans if fits(*p)), plans[-1])
    t.update(dq_bulk=mode, double=double, unroll=2 if mode else 1)
    return {"table": t}


def pieces_fit_query_buffer(t):
    """Mirrors AttentionKernelKey.dqPiecesFitQueryBuffer."""
    width, warps, bm = pad32(t["d"]), t["warps"], t["bm"]
    piece = (bm // t["wm_q"]) * (width // (warps // t["wm_q"])) * 4
    in_q = min(warps, bm * (width + 8) * 2 // piece)
    return warps - in_q <= bm * (pad32(t["dv"]) + 8) * 2 // piece
