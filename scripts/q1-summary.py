#!/usr/bin/env python3
"""Tables of one device call's bench JSON files (scripts/device-q1.sh's layout): the old/new
alternation (NAME-old-1, NAME-new-2, NAME-new-3, NAME-old-4) as ranges per shape and binary, the
ALiBi cost (flash-alibi time / flash time) per file, and any other file's records as they are.

    python3 scripts/q1-summary.py DIR
"""
import collections, glob, json, os, re, sys


def records(path):
    with open(path) as f:
        data = json.load(f)
    return [r for r in data.get("records", []) if "impl" in r and "head_dim" in r]  # attention records only


def key(r):
    return (r["dtype"].replace("float8_e4m3fn", "fp8").replace("bfloat16", "bf16"), r["head_dim"], r["seqlen_q"],
            "causal" if r["causal"] else "full", r["pass"])


def show_alternation(folder, name):
    table = collections.defaultdict(lambda: collections.defaultdict(list))
    for path in sorted(glob.glob(os.path.join(folder, f"{name}-*-[0-9].json"))):
        which = re.search(rf"{name}-(old|new)-\d\.json$", path).group(1)
        for r in records(path):
            if r["tflops"]:
                table[key(r) + (r["impl"],)][which].append(r["tflops"])
    if not table:
        return
    print(f"\n{name}: old / new binary, TFLOP/s (min-max of the rounds), new/old of the medians")
    for k in sorted(table):
        old, new = sorted(table[k]["old"]), sorted(table[k]["new"])
        ratio = (new[len(new) // 2] / old[len(old) // 2]) if old and new else float("nan")
        fmt = lambda xs: f"{xs[0]:.0f}-{xs[-1]:.0f}" if xs else "-"
        print(f"  {' '.join(map(str, k)):48} old {fmt(old):>10}  new {fmt(new):>10}  {ratio:.3f}")


def show_alibi(path):
    recs = records(path)
    by = {key(r) + (r["impl"],): r for r in recs if r["median_ms"]}
    rows = []
    for k, r in by.items():
        if k[-1] == "flash-alibi" and k[:-1] + ("flash",) in by:
            rows.append((k[:-1], r["median_ms"] / by[k[:-1] + ("flash",)]["median_ms"], r["tflops"]))
    if rows:
        print(f"\n{os.path.basename(path)}: ALiBi time / plain time")
        for k, ratio, tf in sorted(rows):
            print(f"  {' '.join(map(str, k)):48} {ratio:.3f}  (ALiBi {tf:.0f} TFLOP/s)")


def show_plain(path):
    print(f"\n{os.path.basename(path)}")
    for r in records(path):
        shown = f"{r['tflops']:.1f}" if r["tflops"] else r["status"]
        print(f"  {r['impl']:12} {' '.join(map(str, key(r))):44} {shown:>8}  {r.get('note', '')[:80]}")


def main():
    folder = sys.argv[1]
    names = sorted({re.sub(r"-(old|new)-\d\.json$", "", os.path.basename(p))
                    for p in glob.glob(os.path.join(folder, "*-old-[0-9].json"))})
    for name in names:
        show_alternation(folder, name)
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        if re.search(r"-(old|new)-\d\.json$", path):
            if "alibi" in os.path.basename(path):
                show_alibi(path)
            continue
        if any(r["impl"] == "flash-alibi" for r in records(path)):
            show_alibi(path)
        else:
            show_plain(path)


if __name__ == "__main__":
    main()
