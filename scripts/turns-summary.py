#!/usr/bin/env python3
"""The backward GEMM-turns A/B of a device call (scripts/device-r10.sh): per shape, the median
times of turns on and off over the alternated runs (bwd-on-N.json, bwd-off-N.json and the
deterministic bwd-det-*), on/off, TFLOP/s, and PyTorch SDPA's cuDNN backward (torch-bwd.json)
with ours/cuDNN (> 1: ours faster).
    scripts/turns-summary.py DIR"""
import collections
import glob
import json
import os
import re
import statistics
import sys

folder = sys.argv[1]
runs = collections.defaultdict(list)  # (impl, d, N, causal, turns) -> [(ms, tflops)]
for path in sorted(glob.glob(os.path.join(folder, "bwd-*.json"))):
    match = re.match(r"bwd-(det-)?(on|off)-\d+\.json", os.path.basename(path))
    if not match:
        continue
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            runs[(r["impl"], r["head_dim"], r["seqlen_k"], r["causal"], match.group(2))].append((r["median_ms"], r["tflops"]))
cudnn = {}
if os.path.exists(os.path.join(folder, "torch-bwd.json")):
    for r in json.load(open(os.path.join(folder, "torch-bwd.json")))["records"]:
        if r.get("status") == "ok" and r.get("pass") == "backward":
            cudnn[(r["head_dim"], r["seqlen_k"], r["causal"])] = r["tflops"]
print(f"{'impl':20} {'d':>4} {'N':>6} {'causal':6} | {'on ms':>8} {'off ms':>8} {'off/on':>6} | {'on TF':>6} {'off TF':>6} | {'cuDNN TF':>8} {'on/cuDNN':>8} {'off/cuDNN':>9}")
ratios = []
for impl, d, n, causal in sorted({k[:4] for k in runs}):
    on, off = runs.get((impl, d, n, causal, "on"), []), runs.get((impl, d, n, causal, "off"), [])
    if not on or not off:
        continue
    on_ms, off_ms = statistics.median(x[0] for x in on), statistics.median(x[0] for x in off)
    on_tf, off_tf = statistics.median(x[1] for x in on), statistics.median(x[1] for x in off)
    c = cudnn.get((d, n, causal))
    ratios.append(off_ms / on_ms)
    print(f"{impl:20} {d:>4} {n:>6} {str(causal):6} | {on_ms:8.3f} {off_ms:8.3f} {off_ms / on_ms:6.3f} | {on_tf:6.0f} {off_tf:6.0f} | "
          f"{c or 0:8.0f} {on_tf / c if c else 0:8.3f} {off_tf / c if c else 0:9.3f}")
if ratios:
    print(f"off/on geomean {statistics.geometric_mean(ratios):.3f} over {len(ratios)} shapes")
