#!/usr/bin/env python3
"""Issue #17's grid record from one device call: ours (`bench --grid flash --json`, one or more
runs, each point the best of them) against PyTorch SDPA's cuDNN and flash ("FA2") backends
(benchmarks/peers/torch_sdpa.py --json) timed in the same call, per point as TFLOP/s ratios, with
geometric means per pass and head dim, ranges, the spread of our runs and the deterministic
backward (optional, `--deterministic FILE`).
    scripts/grid-summary.py TORCH.json OURS.json [OURS2.json ...] [--deterministic DET.json]
"""
import json, math, sys

args = sys.argv[1:]
det_path = None
if "--deterministic" in args:
    i = args.index("--deterministic")
    det_path = args[i + 1]
    del args[i:i + 2]
torch_path, ours_paths = args[0], args[1:]


def load(path, impl=None):
    out = {}
    for r in json.load(open(path))["records"]:
        if r.get("status") != "ok" or (impl and r["impl"] != impl):
            continue
        out[(r["pass"], r["head_dim"], r["seqlen_k"], r["causal"], r["impl"])] = r["tflops"]
    return out


runs = [load(p, "flash") for p in ours_paths]
peers = load(torch_path)
det = load(det_path) if det_path else {}
points = sorted({k[:4] for run in runs for k in run})


def geo(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


print(f"{'pass':9} {'d':>4} {'N':>6} {'causal':6} | {'ours':>7} {'spread':>6} | {'cuDNN':>7} {'ours/cuDNN':>10} | {'FA2':>7} {'ours/FA2':>8}" + (" | det/cuDNN" if det else ""))
ratios = {}
for p in points:
    values = [run[p + ("flash",)] for run in runs if p + ("flash",) in run]
    best = max(values)
    spread = (max(values) / min(values) - 1) * 100 if len(values) > 1 else 0.0
    cud, fa2 = peers.get(p + ("torch-cudnn",)), peers.get(p + ("torch-flash",))
    line = f"{p[0]:9} {p[1]:4} {p[2]:6} {str(p[3]):6} | {best:7.1f} {spread:5.1f}% |"
    line += f" {cud:7.1f} {best / cud:10.3f} |" if cud else f" {'-':>7} {'-':>10} |"
    line += f" {fa2:7.1f} {best / fa2:8.3f}" if fa2 else f" {'-':>7} {'-':>8}"
    if det:
        dv = det.get(p + ("flash-deterministic",)) or det.get(p + ("flash",))
        line += f" | {dv / cud:.3f}" if dv and cud else " | -"
        if dv and cud:
            ratios.setdefault(("det", p[0], p[1]), []).append(dv / cud)
    print(line)
    if cud:
        ratios.setdefault(("cudnn", p[0], p[1]), []).append(best / cud)
    if fa2:
        ratios.setdefault(("fa2", p[0], p[1]), []).append(best / fa2)
print()
for peer in ("cudnn", "fa2", "det"):
    for pass_name in ("forward", "backward"):
        per_d = {d: ratios[(peer, pass_name, d)] for d in (64, 128, 256) if (peer, pass_name, d) in ratios}
        if not per_d:
            continue
        every = [x for xs in per_d.values() for x in xs]
        detail = ", ".join(f"d {d} {geo(xs):.3f}" for d, xs in per_d.items())
        label = {"cudnn": "ours / cuDNN", "fa2": "ours / FA2", "det": "deterministic / cuDNN"}[peer]
        print(f"{pass_name:9} {label:22} geomean {geo(every):.3f} over {len(every)} points "
              f"(range {min(every):.3f}-{max(every):.3f}; {detail})")
