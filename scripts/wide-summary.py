#!/usr/bin/env python3
"""Heads past 256 from one device call (scripts/device-r33.sh): per pass, N and mask, our
TFLOP/s at d 256 and d 512 (best of `ours.json` and `ours-again.json`), the d 512 forward in
value chunks (`ours-chunks.json`), PyTorch SDPA's backends (`torch.json`), and the ratios
d 512 / d 256 (ours), groups / chunks and ours / the best SDPA backend at d 512.
    scripts/wide-summary.py DIR
"""
import json, math, os, sys

folder = sys.argv[1]


def load(name, impl=None):
    path = os.path.join(folder, name)
    out = {}
    if not os.path.exists(path):
        return out
    for r in json.load(open(path))["records"]:
        if r.get("status") != "ok" or (impl and r["impl"] != impl):
            continue
        key = (r["pass"], r["head_dim"], r["seqlen_k"], r["causal"])
        out.setdefault(r["impl"], {})[key] = max(r["tflops"], out.get(r["impl"], {}).get(key, 0))
    return out


ours = {}
for name in ("ours.json", "ours-again.json"):
    for key, value in load(name, "flash").get("flash", {}).items():
        ours[key] = max(value, ours.get(key, 0))
chunks = load("ours-chunks.json", "flash").get("flash", {})
peers = load("torch.json")
fmt = lambda x: f"{x:7.1f}" if x else "      –"
print(f"{'pass':9} {'N':>6} {'causal':6} | {'d256':>7} {'d512':>7} {'512/256':>7} | {'chunks':>7} {'grp/chk':>7} | "
      + " ".join(f"{impl + ' 512':>13}" for impl in sorted(peers)) + " | ours/best SDPA")
ratios = {"512/256": {}, "groups/chunks": [], "ours/sdpa": {}}
for key in sorted({k[:1] + k[2:] for k in ours}):
    p, n, causal = key
    d256, d512 = ours.get((p, 256, n, causal)), ours.get((p, 512, n, causal))
    chunk = chunks.get((p, 512, n, causal))
    sdpa = {impl: peers[impl].get((p, 512, n, causal)) for impl in sorted(peers)}
    best = max((v for v in sdpa.values() if v), default=None)
    r = d512 / d256 if d256 and d512 else None
    g = d512 / chunk if chunk and d512 else None
    o = d512 / best if best and d512 else None
    if r: ratios["512/256"].setdefault(p, []).append(r)
    if g: ratios["groups/chunks"].append(g)
    if o: ratios["ours/sdpa"].setdefault(p, []).append(o)
    print(f"{p:9} {n:6} {str(causal):6} | {fmt(d256)} {fmt(d512)} {r or 0:7.3f} | {fmt(chunk)} {g or 0:7.3f} | "
          + " ".join(f"{fmt(v):>13}" for v in sdpa.values()) + f" | {o or 0:.2f}")
geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")
for p, xs in ratios["512/256"].items():
    print(f"{p}: d 512 / d 256 geomean {geo(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})")
if ratios["groups/chunks"]:
    xs = ratios["groups/chunks"]
    print(f"forward groups / chunks geomean {geo(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})")
for p, xs in ratios["ours/sdpa"].items():
    print(f"{p}: ours / best SDPA backend at d 512 geomean {geo(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})")
