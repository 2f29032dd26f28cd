#!/usr/bin/env python3
"""A feature's cost from a device call's alternated benches (device-steps.sh `alternate NAME`):
for each binary (old, new) and shape, the median time of `flash` and of the feature's
implementation and their ratio, then the new/old ratio of the feature's times.
    scripts/dropout-summary.py DIR [NAME [IMPL]]   (NAME defaults to dropout, IMPL to flash-NAME)"""
import collections
import glob
import json
import os
import statistics
import sys

folder = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else "dropout"
feature = sys.argv[3] if len(sys.argv) > 3 else f"flash-{name}"
times = collections.defaultdict(list)  # (which, pass, causal, N, d, impl) -> [ms]
for path in sorted(glob.glob(os.path.join(folder, f"{name}-*-[0-9].json"))):
    which = os.path.basename(path)[len(name) + 1:].split("-")[0]
    for r in json.load(open(path))["records"]:
        if r.get("status") != "ok":
            continue
        key = (which, r["pass"], r["causal"], r["seqlen_k"], r["head_dim"], r["impl"])
        times[key].append(r["median_ms"])
shapes = sorted({k[1:5] for k in times})
print(f"{'pass':9} {'causal':6} {'N':>6} {'d':>4} | {'old plain':>9} {'old feat':>9} {'cost':>6} | {'new plain':>9} {'new feat':>9} {'cost':>6} | feat new/old")
for shape in shapes:
    cells = []
    for which in ("old", "new"):
        plain = times.get((which,) + shape + ("flash",), [])
        drop = times.get((which,) + shape + (feature,), [])
        if plain and drop:
            p, q = statistics.median(plain), statistics.median(drop)
            cells.append((p, q, q / p))
        else:
            cells.append(None)
    text = f"{shape[0]:9} {str(shape[1]):6} {shape[2]:6} {shape[3]:4} |"
    for c in cells:
        text += f" {c[0]:9.3f} {c[1]:9.3f} {c[2]:5.2f}x |" if c else f" {'-':>9} {'-':>9} {'-':>6} |"
    if all(cells):
        text += f" {cells[1][1] / cells[0][1]:.3f}"
    print(text)
