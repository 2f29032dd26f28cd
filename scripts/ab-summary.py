#!/usr/bin/env python3
"""Summarises a device-ab.sh run: ours (new and old binaries, each case the best of its rounds)
against PyTorch's cuDNN and flash SDPA timed in the same call, as ratios of TFLOP/s, geometric
means per pass and head dim, and new/old (the restructure's no-regression check). Writes one
JSON with every per-case number.
    scripts/ab-summary.py OUT_DIR docs/benchmarks/NAME.json
"""
import glob, json, math, os, re, sys

out_dir, json_path = sys.argv[1], sys.argv[2]
row = re.compile(r"^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(true|false)\s+(\S+)\s+([\d.]+|-)\s+(\d+|-)\s+([\d.]+|-)\s+(\d+|-)")


def ours(side, fa2=False):
    """{(pass, d, N, causal): best TFLOP/s over rounds} for one binary."""
    best = {}
    pattern = f"{side}-fa2-*.txt" if fa2 else f"{side}-[0-9]*.*"
    for path in sorted(glob.glob(os.path.join(out_dir, pattern))):
        for line in open(path):
            m = row.match(line)
            if not m:
                continue
            d, n, causal = int(m[1]), int(m[2]), m[5] == "true"
            for pass_name, tf in (("forward", m[8]), ("backward", m[10])):
                if tf != "-":
                    key = (pass_name, d, n, causal)
                    best[key] = max(best.get(key, 0.0), float(tf))
    return best


def peers():
    report = json.load(open(os.path.join(out_dir, "torch.json")))
    table = {}
    for r in report["records"]:
        if r.get("tflops") is None:
            continue
        key = (r["pass"], r["head_dim"], r["seqlen_q"], r["causal"])
        table.setdefault(r["impl"], {})[key] = r["tflops"]
    return table, report.get("device")


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


new, old = ours("new"), ours("old")
new_fa2, old_fa2 = ours("new", fa2=True), ours("old", fa2=True)
torch, device = peers()
cudnn = torch.get("torch-cudnn", {})
flash = torch.get("torch-flash", {})
summary = {"device": device, "cases": [], "ratios": {}}
for key in sorted(set(new) | set(old)):
    case = dict(zip(("pass", "head_dim", "seqlen", "causal"), key))
    case.update(new=new.get(key), old=old.get(key), cudnn=cudnn.get(key), fa2=flash.get(key),
                new_fa2_forward=new_fa2.get(key), old_fa2_forward=old_fa2.get(key))
    summary["cases"].append(case)
for pass_name in ("forward", "backward"):
    for label, mine, peer in (("new/cudnn", new, cudnn), ("old/cudnn", old, cudnn), ("new/fa2", new, flash),
                              ("new/old", new, old), ("new_fa2kernel/old_fa2kernel", new_fa2, old_fa2)):
        for dims in ((64, 128, 256), (64,), (128,), (256,), (96,), (192,)):
            keys = [k for k in mine if k[0] == pass_name and k[1] in dims and k in peer]
            ratios = [mine[k] / peer[k] for k in keys]
            if ratios:
                name = f"{pass_name} {label} d{'/'.join(map(str, dims))}"
                summary["ratios"][name] = {"geomean": round(geomean(ratios), 4), "min": round(min(ratios), 4),
                                           "max": round(max(ratios), 4), "points": len(ratios)}
json.dump(summary, open(json_path, "w"), indent=1)
for name, r in summary["ratios"].items():
    print(f"{name:45s} {r['geomean']:.3f} ({r['min']:.2f}-{r['max']:.2f}, {r['points']} points)")
