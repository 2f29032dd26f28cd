#!/usr/bin/env python3
"""The fp8 tile A/B of a device call (scripts/device-r10.sh): per head dim, shape and arm
(pingpong = the BN 256 / 128 tile with the serial ping-pong, nopingpong = the same tile without
it, the table's), TFLOP/s of each round, the
arms' ratio, our bf16 beside (bf16.json) and cuDNN's fp8 SDPA (cudnn-fp8.json) when present.
    scripts/fp8-tiles-summary.py DIR"""
import collections
import glob
import json
import os
import re
import sys

folder = sys.argv[1]
tflops = collections.defaultdict(list)  # (d, N, arm) -> [TFLOP/s per round]
for path in sorted(glob.glob(os.path.join(folder, "fp8-d*-*-[0-9].json"))):
    match = re.match(r"fp8-d(\d+)-(\w+)-(\d)\.json", os.path.basename(path))
    if not match:
        continue
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            tflops[(r["head_dim"], r["seqlen_k"], match.group(2))].append(r["tflops"])


def other(name):
    table = {}
    path = os.path.join(folder, name)
    if os.path.exists(path):
        for r in json.load(open(path))["records"]:
            if r.get("status") == "ok" and not r.get("causal"):
                table[(r["head_dim"], r["seqlen_k"])] = r["tflops"]
    return table


bf16, cudnn = other("bf16.json"), other("cudnn-fp8.json")
print(f"{'d':>4} {'N':>6} | {'pingpong (rounds)':>20} | {'no pingpong (rounds)':>20} | {'pp/no':>6} | {'bf16':>6} {'pp/bf16':>7} | {'cuDNN':>6} {'pp/cuDNN':>8}")
for d, n in sorted({k[:2] for k in tflops}):
    pp, no = tflops.get((d, n, "pingpong"), []), tflops.get((d, n, "nopingpong"), [])
    best_pp, best_no = max(pp, default=0), max(no, default=0)
    fmt = lambda xs: " / ".join(f"{x:.0f}" for x in xs) or "-"
    ratio = f"{best_pp / best_no:.3f}" if best_pp and best_no else "-"
    b, c = bf16.get((d, n)), cudnn.get((d, n))
    print(f"{d:>4} {n:>6} | {fmt(pp):>20} | {fmt(no):>20} | {ratio:>6} | {b or 0:>6.0f} {best_pp / b if b else 0:>7.2f} | "
          f"{c or 0:>6.0f} {best_pp / c if c else 0:>8.2f}")
