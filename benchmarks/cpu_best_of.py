#!/usr/bin/env python3
"""Merges rounds of one implementation's CPU benchmark into one JSON file: per case, the round
with the lowest median.

On a shared machine (a virtual machine whose cores other tenants also use) a neighbour's work
only ever slows a run down, and by up to a third for a whole case; the rounds are run
alternated with the peer's (`cpu-bench.sh rounds`), so each side gets the same chances of a
quiet window. The merged record keeps the schema of `flash-attention bench` /
`peers/bench_common.py`; its note lists every round's median.

    python3 benchmarks/cpu_best_of.py --out merged.json round1.json round2.json ...
    python3 benchmarks/cpu_best_of.py --compare baseline.json candidate.json

--compare prints, per case and pass, candidate / baseline throughput (median times inverted)
and the geometric mean per pass, matching cases on every option except the implementation
name (so PyTorch's records compare with ours).
"""
import argparse
import json
import math


def key(record):
    return tuple(json.dumps(record.get(name)) for name in (
        "impl", "pass", "dtype", "batch", "heads_q", "heads_kv", "seqlen_q", "seqlen_k", "head_dim", "head_dim_v",
        "causal", "window", "softcap"))


def compare(baseline_path, candidate_path):
    def cases(path):
        result = {}
        for record in json.load(open(path))["records"]:
            if record.get("status") == "ok" and record.get("median_ms"):
                result[key(record)[1:]] = record
        return result
    baseline, candidate = cases(baseline_path), cases(candidate_path)
    ratios = {}
    print(f"{candidate_path} / {baseline_path} (throughput ratio, > 1: candidate faster)")
    for k, record in candidate.items():
        if k not in baseline:
            continue
        ratio = baseline[k]["median_ms"] / record["median_ms"]
        ratios.setdefault(record["pass"], []).append(ratio)
        print(f"  {record['pass']:9} d={record['head_dim']:<4} N={record['seqlen_q']:<6} causal={str(record['causal']):5} "
              f"{baseline[k]['median_ms']:9.1f} ms -> {record['median_ms']:9.1f} ms  {ratio:.3f}")
    for name, values in ratios.items():
        geomean = math.exp(sum(math.log(v) for v in values) / len(values))
        print(f"  {name}: geomean {geomean:.3f} (min {min(values):.3f}, max {max(values):.3f}, {len(values)} cases)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--compare", nargs=2, metavar=("BASELINE", "CANDIDATE"))
    parser.add_argument("--peaks", nargs="*", default=[], metavar="JSON",
                        help="more probe readings of the same window (their fma_peak_gflops only)")
    parser.add_argument("rounds", nargs="*")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    if not args.out or not args.rounds:
        parser.error("--out and at least one round are required (or --compare)")

    documents = [json.load(open(path)) for path in args.rounds]
    best, medians, order = {}, {}, []
    for document in documents:
        for record in document["records"]:
            k = key(record)
            if k not in medians:
                medians[k] = []
                order.append(k)
            if record.get("status") != "ok" or record.get("median_ms") is None:
                best.setdefault(k, record)
                continue
            medians[k].append(record["median_ms"])
            current = best.get(k)
            if (current is None or current.get("status") != "ok" or current.get("median_ms") is None
                    or record["median_ms"] < current["median_ms"]):
                best[k] = record
    records = []
    for k in order:
        record = dict(best[k])
        if medians[k]:
            listed = ", ".join(f"{m:.1f}" for m in medians[k])
            earlier = record.get("note") or ""
            record["note"] = (earlier + "; " if earlier else "") + f"best of {len(medians[k])} rounds (medians ms: {listed})"
        records.append(record)

    merged = dict(documents[0])
    merged["records"] = records
    merged["rounds"] = [{"path": path, "created": d.get("created"), "software": d.get("software")}
                        for path, d in zip(args.rounds, documents)]
    # The probe, too, is only ever slowed down by neighbours: the best reading of the window.
    extra = [json.load(open(path)) for path in args.peaks]
    peaks = [d.get("fma_peak_gflops") for d in documents + extra if d.get("fma_peak_gflops")]
    if peaks:
        merged["fma_peak_gflops"] = max(peaks)
        merged["fma_peak_readings"] = [round(p, 1) for p in peaks]
    with open(args.out, "w") as handle:
        json.dump(merged, handle, indent=1)
        handle.write("\n")
    print(f"wrote {args.out}: {len(records)} cases from {len(documents)} rounds")


if __name__ == "__main__":
    main()
