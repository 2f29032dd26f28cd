#!/usr/bin/env python3
"""Device-memory bytes of one attention forward, measured with Nsight Compute.

For each implementation and sequence length, runs one process under
`ncu --metrics dram__bytes_read.sum,dram__bytes_write.sum --clock-control none` that performs a
single forward, and sums the two counters over every kernel of that forward. Implementations:

    torch-math, torch-flash, torch-cudnn, torch-efficient   via benchmarks/peers/torch_sdpa.py --profile-once
    flash, standard                                          via our binary: flash-attention bench --once

Writes {"schema": "flash-attention-dram/1", "device", "created", "records": [{impl, dtype, batch,
heads, seqlen, head_dim, causal, bytes_read, bytes_written, kernels}]}.

    python3 benchmarks/ncu_dram.py --impls torch-math,torch-flash --binary .devbin/flash-attention-bench --json out.json
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = "dram__bytes_read.sum,dram__bytes_write.sum"


def command_for(impl: str, args, seqlen: int) -> list[str]:
    shape = ["--batch", str(args.batch), "--heads", str(args.heads), "--seqlens", str(seqlen),
             "--head-dims", str(args.head_dim)]
    if impl.startswith("torch-"):
        return [sys.executable, os.path.join(HERE, "peers", "torch_sdpa.py"), "--device", "cuda",
                "--grid", "custom", "--dtypes", args.dtype, "--causal", "no", "--impls", impl[6:],
                "--profile-once", *shape]
    if not args.binary:
        raise SystemExit(f"{impl} needs --binary")
    return [args.binary, "bench", "--device", "cuda", "--once", "--grid", "custom", "--dtypes", args.dtype,
            "--causal", "no", "--impls", impl, "--passes", "forward", "--quiet", *shape]


def measure(impl: str, args, seqlen: int) -> dict:
    ncu = [args.ncu, "--csv", "--print-units", "base", "--metrics", METRICS, "--clock-control", "none"]
    if impl.startswith("torch-"):
        ncu += ["--profile-from-start", "off"]
    proc = subprocess.run(ncu + command_for(impl, args, seqlen), capture_output=True, text=True,
                          timeout=args.timeout_s)
    lines = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    base = {"impl": impl, "dtype": args.dtype, "batch": args.batch, "heads": args.heads, "seqlen": seqlen,
            "head_dim": args.head_dim, "causal": False}
    if start is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**base, "status": "error", "note": " | ".join(tail)[:300]}
    totals = {"dram__bytes_read.sum": 0.0, "dram__bytes_write.sum": 0.0}
    kernels = set()
    for row in csv.DictReader(lines[start:]):
        name = row.get("Metric Name")
        if name in totals:
            totals[name] += float(row["Metric Value"].replace(",", ""))
            kernels.add(row["ID"])
    return {**base, "status": "ok", "bytes_read": int(totals["dram__bytes_read.sum"]),
            "bytes_written": int(totals["dram__bytes_write.sum"]), "kernels": len(kernels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", default="torch-math,torch-flash")
    parser.add_argument("--seqlens", default="1024,2048,4096,8192,16384")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--binary", default=None, help="our flash-attention binary, for flash/standard")
    parser.add_argument("--ncu", default="ncu")
    parser.add_argument("--timeout-s", type=float, default=120)
    parser.add_argument("--device-name", default=None)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    device = args.device_name
    if device is None:
        try:
            device = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            device = "unknown GPU"
    records = []
    for impl in args.impls.split(","):
        for seqlen in (int(x) for x in args.seqlens.split(",")):
            try:
                r = measure(impl, args, seqlen)
            except subprocess.TimeoutExpired:
                r = {"impl": impl, "seqlen": seqlen, "status": "timeout"}
            records.append(r)
            print(f"ncu {impl} N={seqlen}: " + (f"read {r['bytes_read'] / 1e6:.1f} MB, written "
                  f"{r['bytes_written'] / 1e6:.1f} MB, {r['kernels']} kernels" if r["status"] == "ok"
                  else f"{r['status']} {r.get('note', '')}"), file=sys.stderr, flush=True)
    report = {"schema": "flash-attention-dram/1", "generator": "benchmarks/ncu_dram.py", "device": device,
              "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "metrics": METRICS, "records": records}
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
