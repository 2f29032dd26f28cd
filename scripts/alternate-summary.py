#!/usr/bin/env python3
"""Old against new from the `alternate NAME` steps of scripts/device-steps.sh (bench JSON written
as NAME-old-1, NAME-new-2, NAME-new-3, NAME-old-4): per case the range of the two old and the two
new medians and new/old of their medians; then each feature's time over plain's (impl `flash`)
within each binary. Used for r27 and r28 (docs/perf-notes/cuda-hopper.md).
    scripts/alternate-summary.py NAME [DIR]
"""
import collections
import glob
import json
import statistics
import sys

name = sys.argv[1]
folder = sys.argv[2] if len(sys.argv) > 2 else "."

# (impl, pass, d, N, causal) -> {"old": [ms, ...], "new": [ms, ...]}
times = collections.defaultdict(lambda: collections.defaultdict(list))
for path in sorted(glob.glob(f"{folder}/{name}-*-*.json")):
    which = path.split("/")[-1].split("-")[-2]
    for record in json.load(open(path))["records"]:
        if record["status"] != "ok":
            continue
        case = (record["impl"], record["pass"], record["head_dim"], record["seqlen_q"], record["causal"])
        times[case][which].append(record["median_ms"])

print(f"{'impl':14s} {'pass':9s} {'d':>4s} {'N':>6s} causal  old ms (range)      new ms (range)      new/old")
for case, runs in sorted(times.items()):
    old, new = runs["old"], runs["new"]
    if not old or not new:
        continue
    impl, pass_name, d, n, causal = case
    ratio = statistics.median(new) / statistics.median(old)
    print(f"{impl:14s} {pass_name:9s} {d:4d} {n:6d} {str(causal):6s}  "
          f"{min(old):.4f}-{max(old):.4f}   {min(new):.4f}-{max(new):.4f}   {ratio:.3f}")

print()
for which in ("old", "new"):
    for case, runs in sorted(times.items()):
        plain = ("flash",) + case[1:]
        if case[0] == "flash" or not runs[which] or not times[plain][which]:
            continue
        ratio = statistics.median(runs[which]) / statistics.median(times[plain][which])
        print(f"{which}: {case[0]} / flash, {case[1]}, d {case[2]}, N {case[3]}, causal {case[4]}: {ratio:.3f}")
