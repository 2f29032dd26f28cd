#!/usr/bin/env python3
"""The backward forms of a device call (scripts/device-r14.sh): per shape, the TFLOP/s of each
`--hopper-backward-form` in each round (bwd-FORM-N.json), the best of each against the split
form's best, and PyTorch SDPA's cuDNN backward from the same call (torch-bwd.json).
    scripts/backward-form-summary.py DIR"""
import collections
import glob
import json
import math
import os
import re
import sys

folder = sys.argv[1]
tflops = collections.defaultdict(list)  # (d, causal, N, form) -> [TFLOP/s per round]
for path in sorted(glob.glob(os.path.join(folder, "bwd-*-[0-9].json"))):
    match = re.match(r"bwd-(.+)-(\d)\.json", os.path.basename(path))
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            tflops[(r["head_dim"], bool(r.get("causal")), r["seqlen_k"], match.group(1))].append(r["tflops"])

cudnn = {}
path = os.path.join(folder, "torch-bwd.json")
if os.path.exists(path):
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            cudnn[(r["head_dim"], bool(r.get("causal")), r["seqlen_k"])] = r["tflops"]

forms = [f for f in ["split", "fused", "fused-bulk", "fused-bulk-dq-first"] if any(k[3] == f for k in tflops)]
reference = "split" if "split" in forms else forms[0]
print(f"{'shape':>20} | " + " | ".join(f"{f + ' (rounds)':>18} {'/' + reference:>6}" for f in forms) + " | cuDNN | best/cuDNN")
ratios = collections.defaultdict(list)
for d, causal, n in sorted({k[:3] for k in tflops}):
    base = max(tflops.get((d, causal, n, reference), []), default=0)
    cells = []
    for f in forms:
        runs = tflops.get((d, causal, n, f), [])
        ratio = max(runs) / base if runs and base else None
        if ratio:
            ratios[(d, f)].append(ratio)
        cells.append(f"{' / '.join(f'{x:.0f}' for x in runs) or '-':>18} {f'{ratio:.3f}' if ratio else '-':>6}")
    peer = cudnn.get((d, causal, n))
    best = {f: max(tflops.get((d, causal, n, f), [0])) for f in forms}
    tail = f" | {peer:5.0f} | " + " ".join(f"{f} {best[f] / peer:.3f}" for f in forms) if peer else ""
    if peer:
        for f in forms:
            ratios[(d, f + "/cuDNN")].append(best[f] / peer)
    print(f"{f'd{d} ' + ('causal ' if causal else '') + f'N{n}':>20} | " + " | ".join(cells) + tail)
print()
for (d, f), values in sorted(ratios.items()):
    print(f"d{d} {f}: geometric mean {math.exp(sum(map(math.log, values)) / len(values)):.3f} over {len(values)} shapes")
