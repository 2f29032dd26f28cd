#!/usr/bin/env python3
"""The exponentials-on-FMA sweep of a device call (scripts/device-r13.sh): per shape, the
TFLOP/s of each period (0 = all exponentials on the MUFU) in each round, the best of each
period against period 0's best, and cuDNN's fp8 SDPA from the same call (cudnn-fp8.json) where
present.
    scripts/exp2-summary.py DIR"""
import collections
import glob
import json
import os
import re
import sys

folder = sys.argv[1]
tflops = collections.defaultdict(list)  # (causal, d, N, period) -> [TFLOP/s per round]
for path in sorted(glob.glob(os.path.join(folder, "fp8-*p*-[0-9].json"))):
    match = re.match(r"fp8-(causal-)?p(\d+)-(\d)\.json", os.path.basename(path))
    if not match:
        continue
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            key = (bool(r.get("causal")), r["head_dim"], r["seqlen_k"], int(match.group(2)))
            tflops[key].append(r["tflops"])

cudnn = {}  # (d, N) -> cuDNN fp8 SDPA TFLOP/s in the same call (cudnn-fp8.json), non-causal
path = os.path.join(folder, "cudnn-fp8.json")
if os.path.exists(path):
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok" and not r.get("causal"):
            cudnn[(r["head_dim"], r["seqlen_k"])] = r["tflops"]

periods = sorted({k[3] for k in tflops})
print(f"{'shape':>18} | " + " | ".join(f"{'p' + str(p) + ' (rounds)':>16} {'/p0':>5}" for p in periods))
for causal, d, n in sorted({k[:3] for k in tflops}):
    base = max(tflops.get((causal, d, n, 0), []), default=0)
    cells = []
    for p in periods:
        runs = tflops.get((causal, d, n, p), [])
        ratio = f"{max(runs) / base:.3f}" if runs and base else "-"
        cells.append(f"{' / '.join(f'{x:.0f}' for x in runs) or '-':>16} {ratio:>5}")
    peer = cudnn.get((d, n)) if not causal else None
    best = max((max(v) for k, v in tflops.items() if k[:3] == (causal, d, n)), default=0)
    tail = f" | cuDNN {peer:.0f}, best/cuDNN {best / peer:.3f}" if peer else ""
    print(f"{('causal ' if causal else '') + f'd{d} N{n}':>18} | " + " | ".join(cells) + tail)
