#!/usr/bin/env python3
"""A forward tile sweep of a device call (scripts/device-r16.sh): per shape, the TFLOP/s of each
`--hopper-forward-tile` (fwd-TILE-ROUND.json; "table" = the tile table's choice) in each round,
the best of each against the table's best, and cuDNN's (torch-d64.json) from the same call.
    scripts/tile-sweep-summary.py DIR"""
import collections
import glob
import json
import os
import re
import sys

folder = sys.argv[1]
tflops = collections.defaultdict(list)  # (d, causal, N, tile) -> [TFLOP/s per round]
for path in sorted(glob.glob(os.path.join(folder, "fwd-*-[0-9].json"))):
    tile = re.match(r"fwd-(.+)-\d\.json", os.path.basename(path)).group(1)
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok":
            tflops[(r["head_dim"], bool(r["causal"]), r["seqlen_k"], tile)].append(r["tflops"])
cudnn = {}
for path in glob.glob(os.path.join(folder, "torch-*.json")):
    for r in json.load(open(path))["records"]:
        if r.get("status") == "ok" and r["pass"] == "forward":
            cudnn[(r["head_dim"], bool(r["causal"]), r["seqlen_k"])] = r["tflops"]
tiles = sorted({k[3] for k in tflops}, key=lambda t: (t != "table", t))
for d, causal, n in sorted({k[:3] for k in tflops}):
    base = max(tflops.get((d, causal, n, "table"), [0]))
    peer = cudnn.get((d, causal, n))
    print(f"d{d} {'causal' if causal else 'full'} N{n}" + (f"  (cuDNN {peer:.0f})" if peer else ""))
    for t in tiles:
        runs = tflops.get((d, causal, n, t), [])
        if not runs:
            continue
        line = f"  {t:28} {' / '.join(f'{x:6.1f}' for x in runs):>16}  /table {max(runs) / base:.3f}" if base else ""
        print(line + (f"  /cuDNN {max(runs) / peer:.3f}" if peer else ""))
