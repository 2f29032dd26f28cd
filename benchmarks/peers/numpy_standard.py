#!/usr/bin/env python3
"""Standard attention in NumPy float32 (S and P materialized), timed on the CPU grids.

The CPU peer that is always there: the textbook algorithm on NumPy's BLAS.
forward:  S = scale·Q·Kᵀ (masked to -inf), P = softmax(S), O = P·V, LSE.
backward: P recomputed from the LSE, dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O)),
          dQ = scale·dS·K, dK = scale·dSᵀ·Q.
A case whose matrices do not fit in the available memory is reported as out_of_memory without
being attempted. Writes the JSON schema of benchmarks/README.md.

    python3 benchmarks/peers/numpy_standard.py --grid cpu --json out.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402


def causal_mask(n: int) -> np.ndarray:
    """True where key j is hidden from query i (j > i; square problems, so bottom-right = top-left)."""
    return np.triu(np.ones((n, n), dtype=bool), k=1)


def forward(q, k, v, causal: bool):
    """q, k, v: [b, h, N, d] float32. Returns O [b, h, N, d] and LSE [b, h, N]."""
    scale = np.float32(1 / np.sqrt(q.shape[-1]))
    s = np.matmul(q, k.transpose(0, 1, 3, 2)) * scale
    if causal:
        s[..., causal_mask(s.shape[-1])] = -np.inf
    m = s.max(axis=-1, keepdims=True)
    np.subtract(s, m, out=s)
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    np.divide(s, total, out=s)
    out = np.matmul(s, v)
    lse = (m + np.log(total))[..., 0]
    return out, lse


def backward(q, k, v, out, lse, dout, causal: bool):
    scale = np.float32(1 / np.sqrt(q.shape[-1]))
    p = np.matmul(q, k.transpose(0, 1, 3, 2)) * scale
    np.subtract(p, lse[..., None], out=p)
    np.exp(p, out=p)
    if causal:
        p[..., causal_mask(p.shape[-1])] = 0
    dv = np.matmul(p.transpose(0, 1, 3, 2), dout)
    dp = np.matmul(dout, v.transpose(0, 1, 3, 2))
    d = (dout * out).sum(axis=-1, keepdims=True)
    np.subtract(dp, d, out=dp)
    np.multiply(dp, p, out=dp)
    del p
    dq = np.matmul(dp, k) * scale
    dk = np.matmul(dp.transpose(0, 1, 3, 2), q) * scale
    return dq, dk, dv


def needed_bytes(case: bc.Case, pass_name: str) -> int:
    matrix = case.batch * case.heads * case.seqlen * case.seqlen * 4
    return matrix * (2 if pass_name == "forward" else 3)


def run_case(case: bc.Case, pass_name: str, args, device: str) -> dict:
    need = needed_bytes(case, pass_name)
    avail = bc.available_host_bytes()
    if avail is not None and need > 0.5 * avail:  # a shared machine: never near the OOM killer
        return bc.record("cpu", "numpy-standard", case, pass_name, device, status="out_of_memory",
                         note=f"S and P need ~{need / 2**30:.1f} GiB, {avail / 2**30:.1f} GiB available")
    try:
        rng = np.random.default_rng(case.seqlen * 131 + case.head_dim)
        shape = (case.batch, case.heads, case.seqlen, case.head_dim)
        with bc.HostPeak() as hp:
            q, k, v, dout = (rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(4))
            out, lse = forward(q, k, v, case.causal)

            def step():
                if pass_name == "forward":
                    return forward(q, k, v, case.causal)
                if pass_name == "backward":
                    return backward(q, k, v, out, lse, dout, case.causal)
                o, l = forward(q, k, v, case.causal)
                return backward(q, k, v, o, l, dout, case.causal)

            t0 = time.perf_counter()
            step()
            once = time.perf_counter() - t0
        runs = max(min(3, args.reps), min(args.reps, int(args.cpu_budget_s / max(once, 1e-9))))
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            step()
            times.append((time.perf_counter() - t) * 1e3)
        return bc.record("cpu", "numpy-standard", case, pass_name, device, times_ms=times, peak_bytes=hp.peak)
    except MemoryError:
        return bc.record("cpu", "numpy-standard", case, pass_name, device, status="out_of_memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="cpu", help="cpu | cpu-kernels | long-cpu | smoke")
    parser.add_argument("--head-dims", default=None)
    parser.add_argument("--seqlens", default=None)
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--passes", default="forward,backward,forward_backward")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--cpu-budget-s", type=float, default=1.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    ints = lambda text: [int(x) for x in text.split(",")] if text else None  # noqa: E731
    causal = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    cases = bc.grid(args.grid, ["float32"], ints(args.head_dims), ints(args.seqlens), causal)
    passes = args.passes.split(",")
    device = bc.cpu_name()
    load_start = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else ""
    progress = bc.Progress(len(cases) * len(passes), args.quiet)
    records = []
    for case in cases:
        for pass_name in passes:
            r = run_case(case, pass_name, args, device)
            records.append(r)
            shown = f"{r['median_ms']:.3f} ms, {r['tflops'] * 1e3:.1f} GFLOP/s" if r["median_ms"] else r["status"]
            progress.step(f"numpy-standard {pass_name} {case.label()}: {shown}")
    if args.json:
        config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
        blas = ""
        try:
            blas = config["Build Dependencies"]["blas"]["name"]
        except (KeyError, TypeError):
            pass
        bc.write_report(args.json, "benchmarks/peers/numpy_standard.py", "cpu", device, records,
                        {"numpy": np.__version__, "blas": blas, "python": sys.version.split()[0],
                         "loadavg_start": load_start,
                         "loadavg_end": " ".join(open("/proc/loadavg").read().split()[:3]) if load_start else ""})
    bc.print_table(records)


if __name__ == "__main__":
    main()
