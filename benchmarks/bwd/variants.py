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


def table(d, dv, arch="sm_90a"):
    """The H100/A100 table tile; two Q/dO buffers where they fit the arch (as the Swift key)."""
    import kernel_source as ks
    width = max(pad32(d), pad32(dv))
    if width <= 64:
        t = cfg(d, dv, 128, 128, 8)
    elif width <= 128:
        t = cfg(d, dv, 64, 128, 8)
    else:
        t = cfg(d, dv, 64, 64, 8)
    t["double"] = ks.smem_bytes(dict(t, double=True)) <= LIMITS.get(arch, 227 * 1024)
    return {"table": t}
