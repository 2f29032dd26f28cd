"""Compiles backward variants here (no GPU) and prints registers and spills.
python3 benchmarks/bwd/check.py [--arch sm_90a] [--exhaustive]"""
import argparse, itertools, json, sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_source as ks
from variants import table

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="sm_90a")
ap.add_argument("--exhaustive", action="store_true")
ap.add_argument("--only", default="")
ap.add_argument("--source", default="")
ap.add_argument("--dims", default="")
ap.add_argument("--extra", default="")
ap.add_argument("--dq-bulk", type=int, default=None, help="force the dQ reduction: 0 atomics, 1 bulk, 2 bulk in the Q/dO buffer (default: the Swift plan)")
ap.add_argument("--single", action="store_true", help="one Q/dO buffer")
a = ap.parse_args()
dims = [(8, 8), (40, 40), (64, 64), (96, 96), (128, 128), (160, 160), (192, 192), (192, 128), (256, 256)]
flags = list(itertools.product([True, False], [False, True], [False, True])) if a.exhaustive else [(True, False, False), (False, True, True)]
bad = 0
if a.dims:
    dims = [tuple(int(x) for x in p.split(':')) for p in a.dims.split(',')]
extra = dict(kv.split('=') for kv in a.extra.split(',') if kv)
for (d, dv), (bf16, masked, softcap) in itertools.product(dims, flags):
    for label, cfg in table(d, dv, a.arch, a.dq_bulk).items():
        if a.only and label != a.only:
            continue
        cfg = dict(cfg, bf16=bf16, masked=masked, softcap=softcap, source=a.source, extra=extra)
        if softcap and cfg.get("dq_bulk"):
            cfg["unroll"] = 1   # as AttentionKernelKey.backwardPlan
        if a.single:
            cfg["double"] = False
        try:
            _, log, regs, spill = ks.compile_cubin(cfg, "flash_backward_kv", a.arch)
            ks.compile_cubin(cfg, "flash_backward_convert_dq", a.arch)
            print(f"{label:>14} d={d} dv={dv} bf16={int(bf16)} mask={int(masked)} cap={int(softcap)} regs={regs} spill={spill} smem={ks.smem_bytes(cfg)}", flush=True)
            bad += spill > 0
        except RuntimeError as e:
            print(label, d, dv, str(e)[-1500:])
            bad += 1
sys.exit(1 if bad else 0)
