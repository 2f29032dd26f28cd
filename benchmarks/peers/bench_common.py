"""Shared pieces of the peer benchmarks: the grid presets, FLOP counts, the JSON schema.

The grid and the record layout mirror `Sources/FlashAttention/Benchmark/` so that our Swift
benchmark and the peers write interchangeable files (schema in benchmarks/README.md).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass

SCHEMA = "flash-attention-bench/1"

DTYPE_NAMES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16",
               "float16": "float16", "fp32": "float32", "float32": "float32"}

PASSES = ("forward", "backward", "forward_backward")


@dataclass(frozen=True)
class Case:
    """One problem of the grid: q, k, v are [batch, seqlen, heads, head_dim]."""
    batch: int
    heads: int
    seqlen: int
    head_dim: int
    causal: bool
    dtype: str  # "bfloat16" | "float16" | "float32"

    def forward_flops(self) -> float:
        """FlashAttention papers' count: 4·b·h·N²·d, halved when causal."""
        flops = 4.0 * self.batch * self.heads * self.seqlen * self.seqlen * self.head_dim
        return flops / 2 if self.causal else flops

    def flops(self, pass_name: str) -> float:
        factor = {"forward": 1.0, "backward": 2.5, "forward_backward": 3.5}[pass_name]
        return factor * self.forward_flops()

    def label(self) -> str:
        return (f"{self.dtype} b={self.batch} h={self.heads} N={self.seqlen} d={self.head_dim}"
                f"{' causal' if self.causal else ''}")


def grid(preset: str, dtypes: list[str], head_dims: list[int] | None = None,
         seqlens: list[int] | None = None, causal: list[bool] | None = None) -> list[Case]:
    """The presets of `flash-attention bench --grid`:

    flash        FA2/FA3 paper grid: N 512..16k, batch = 16384/N, heads = 2048/d, d 64/128/256.
    cpu          CPU default: N 512..4096, batch = 4096/N, 8 heads, d 64/128 (minutes on 2 cores).
    cpu-kernels  CPU kernel study: N 1024..16384, batch 1, 8 heads, d 64/128.
    scaling-gpu  batch 1, 16 heads, d 128, N 1024..131072 (standard attention runs out of memory).
    scaling-cpu  batch 1, one head, d 64, N 1024..65536.
    long-gpu     one head, batch 1, N = 1,048,576, d 128 (GPU long context).
    long-cpu     one head, batch 1, N = 131,072, d 64, causal (CPU long context).
    smoke        tiny shapes for a quick check of the tooling.
    """
    causal = causal if causal is not None else [False, True]
    cases: list[Case] = []
    if preset == "flash":
        dims = head_dims or [64, 128, 256]
        lens = seqlens or [512, 1024, 2048, 4096, 8192, 16384]
        for dtype in dtypes:
            for d in dims:
                for c in causal:
                    for n in lens:
                        cases.append(Case(max(1, 16384 // n), max(1, 2048 // d), n, d, c, dtype))
    elif preset == "cpu":
        dims = head_dims or [64, 128]
        lens = seqlens or [512, 1024, 2048, 4096]
        for dtype in dtypes:
            for d in dims:
                for c in causal:
                    for n in lens:
                        cases.append(Case(max(1, 4096 // n), 8, n, d, c, dtype))
    elif preset == "cpu-kernels":
        dims = head_dims or [64, 128]
        lens = seqlens or [1024, 2048, 4096, 8192, 16384]
        for dtype in dtypes:
            for d in dims:
                for c in causal:
                    for n in lens:
                        cases.append(Case(1, 8, n, d, c, dtype))
    elif preset in ("scaling-gpu", "scaling-cpu"):
        gpu = preset == "scaling-gpu"
        for dtype in dtypes:
            for d in head_dims or [128 if gpu else 64]:
                for c in causal:
                    for n in seqlens or [1 << k for k in range(10, 18 if gpu else 17)]:
                        cases.append(Case(1, 16 if gpu else 1, n, d, c, dtype))
    elif preset == "long-gpu":
        for dtype in dtypes:
            for n in seqlens or [1 << 20]:
                cases.append(Case(1, 1, n, (head_dims or [128])[0], (causal or [False])[0], dtype))
    elif preset == "long-cpu":
        for dtype in dtypes:
            for n in seqlens or [1 << 17]:
                cases.append(Case(1, 1, n, (head_dims or [64])[0], True, dtype))
    elif preset == "smoke":
        for dtype in dtypes:
            for d in head_dims or [64]:
                for c in causal:
                    for n in seqlens or [256, 512]:
                        cases.append(Case(2, 4, n, d, c, dtype))
    else:
        raise SystemExit(f"unknown grid preset {preset!r}")
    return cases


def record(backend: str, impl: str, case: Case, pass_name: str, device: str, *,
           status: str = "ok", times_ms: list[float] | None = None,
           peak_bytes: int | None = None, note: str = "") -> dict:
    """One JSON record; `median_ms`/`tflops` are null when the case did not run."""
    times = sorted(times_ms or [])
    median = None
    if times:
        mid = len(times) // 2
        median = times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])
    tflops = case.flops(pass_name) / (median * 1e-3) / 1e12 if median else None
    return {
        "backend": backend, "impl": impl, "dtype": case.dtype,
        "batch": case.batch, "heads_q": case.heads, "heads_kv": case.heads,
        "seqlen_q": case.seqlen, "seqlen_k": case.seqlen, "head_dim": case.head_dim,
        "causal": case.causal, "pass": pass_name, "status": status,
        "median_ms": median, "min_ms": times[0] if times else None, "runs": len(times),
        "tflops": tflops, "peak_bytes": peak_bytes, "device": device, "note": note,
    }


def write_report(path: str, generator: str, backend: str, device: str, records: list[dict],
                 software: dict) -> None:
    report = {
        "schema": SCHEMA, "generator": generator, "backend": backend, "device": device,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(), "software": software, "records": records,
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} threads)"
    except OSError:
        pass
    return platform.processor() or "cpu"


class HostPeak:
    """Peak resident memory of this process over a region, from /proc/self/status.

    Writing "5" to /proc/self/clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the
    peak of a region is VmHWM after it minus VmRSS before it.
    """

    @staticmethod
    def _status(field: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.start = self._status("VmRSS")
        return self

    def __exit__(self, *exc):
        hwm = self._status("VmHWM")
        self.peak = hwm - self.start if (self.reset and hwm is not None and self.start is not None) else None
        return False


def available_host_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.done, self.quiet = total, 0, quiet

    def step(self, text: str) -> None:
        self.done += 1
        if not self.quiet:
            print(f"[{self.done}/{self.total}] {text}", file=sys.stderr, flush=True)


def print_table(records: list[dict]) -> None:
    print(f"{'impl':<18} {'pass':<16} {'dtype':<8} {'b':>3} {'h':>3} {'N':>7} {'d':>4} {'causal':>6} "
          f"{'ms':>10} {'TFLOP/s':>9} {'peak MiB':>9}  status")
    for r in records:
        ms = f"{r['median_ms']:.3f}" if r["median_ms"] is not None else "-"
        tf = f"{r['tflops']:.2f}" if r["tflops"] is not None else "-"
        pk = f"{r['peak_bytes'] / 2**20:.1f}" if r["peak_bytes"] is not None else "-"
        print(f"{r['impl']:<18} {r['pass']:<16} {r['dtype']:<8} {r['batch']:>3} {r['heads_q']:>3} "
              f"{r['seqlen_q']:>7} {r['head_dim']:>4} {str(r['causal']):>6} {ms:>10} {tf:>9} {pk:>9}  "
              f"{r['status']}{(': ' + r['note']) if r['note'] else ''}")
