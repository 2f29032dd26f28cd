#!/usr/bin/env python3
"""Old and new decode binaries alternated in one device call (`bench --grid decode --json`, files
decode-old-N.json and decode-new-N.json in DIR): per shape and flush, the best time of each arm
(each tile of the new binary its own arm), its share of the call's copy bandwidth, and new / old.
    scripts/decode-ab-summary.py DIR
"""
import glob, json, os, sys

directory = sys.argv[1]
arms = {}      # (arm, batch, cache, page, flush) -> best microseconds
percent = {}   # the same key -> % of copy at that time
copies = []
for path in sorted(glob.glob(os.path.join(directory, "decode-*.json"))):
    which = os.path.basename(path).split("-")[1]  # old / new
    if which not in ("old", "new"):
        continue
    data = json.load(open(path))
    copies.append(data["copyGigabytesPerSecond"])
    for r in data["records"]:
        arm = which if which == "old" else f"new {r['tile']}"
        key = (arm, r["batch"], r["cacheTokens"], r.get("pageSize") or 0, r["flush"])
        if key not in arms or r["microseconds"] < arms[key]:
            arms[key] = r["microseconds"]
            percent[key] = 100 * r["gigabytesPerSecond"] / data["copyGigabytesPerSecond"]

names = sorted({k[0] for k in arms}, key=lambda a: (a != "old", a))
shapes = sorted({k[1:] for k in arms}, key=lambda s: (s[3], s[2], s[0], s[1]))
print(f"copy bandwidth in the call: {min(copies):.0f}-{max(copies):.0f} GB/s; best of each arm's runs")
header = f"{'flush':6} {'page':>4} {'batch':>5} {'cache':>7} | " + " | ".join(f"{n:>22}" for n in names)
header += " | " + " ".join(f"{n.split()[-1] + '/old':>14}" for n in names if n != "old")
print(header)
for shape in shapes:
    batch, cache, page, flush = shape
    cells, ratios = [], []
    for n in names:
        t = arms.get((n,) + shape)
        cells.append(f"{t:8.1f} us {percent[(n,) + shape]:5.1f} %" if t else f"{'-':>22}")
        old = arms.get(("old",) + shape)
        if n != "old":
            ratios.append(f"{t / old:14.3f}" if t and old else f"{'-':>14}")
    print(f"{flush:6} {page:>4} {batch:>5} {cache:>7} | " + " | ".join(cells) + " | " + " ".join(ratios))
