#!/usr/bin/env python3
"""A feature's cost from one bench JSON (or several, pooled): per pass, causal, N and d, the median
time of each implementation and its ratio to plain `flash` (all from the same run).
    scripts/feature-cost.py FILE.json [FILE.json ...]"""
import collections
import json
import statistics
import sys

times = collections.defaultdict(dict)  # (pass, causal, N, d) -> impl -> [ms]
impls = []
for path in sys.argv[1:]:
    for r in json.load(open(path))["records"]:
        if r.get("status") != "ok":
            continue
        times[(r["pass"], r["causal"], r["seqlen_k"], r["head_dim"])].setdefault(r["impl"], []).append(r["median_ms"])
        if r["impl"] not in impls:
            impls.append(r["impl"])
others = [i for i in impls if i != "flash"]
print(f"{'pass':9} {'causal':6} {'N':>6} {'d':>4} | {'flash ms':>9} | " + " | ".join(f"{i + ' ms':>22} {'/flash':>7}" for i in others))
for shape in sorted(times):
    row = times[shape]
    if "flash" not in row:
        continue
    base = statistics.median(row["flash"])
    text = f"{shape[0]:9} {str(shape[1]):6} {shape[2]:6} {shape[3]:4} | {base:9.3f} |"
    for i in others:
        text += f" {statistics.median(row[i]):22.3f} {statistics.median(row[i]) / base:6.2f}x |" if i in row else f" {'-':>22} {'-':>7} |"
    print(text)
