#!/usr/bin/env python3
"""Figures and tables from benchmark JSON files (schema: benchmarks/README.md).

    python3 benchmarks/plot.py --gpu docs/benchmarks/h100-ours.json docs/benchmarks/h100-torch.json \
        --ncu docs/benchmarks/h100-ncu-dram.json --cpu docs/benchmarks/cpu-ours.json \
        docs/benchmarks/cpu-numpy.json --out docs/benchmarks

Writes, for each backend given:
  <prefix>-throughput-<pass>.png  TFLOP/s (GFLOP/s on the CPU) vs seqlen, one panel per head dim
                                  and mask, ours against each peer                  (figure a)
  <prefix>-scaling.png            time and memory vs N, log-log, standard vs flash, with the
                                  out-of-memory point                               (figure b)
  gpu-memory-access.png           device-memory bytes per forward: analytic model and ncu (figure c)
  README.md                       the figures, tables of ours / peer ratios, scaling, long context,
                                  ncu bytes, and the commands that reproduce them
Only records with status "ok" are drawn; nothing is interpolated or invented.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hbm_model import flash_forward_bytes, standard_forward_bytes  # noqa: E402

STYLE = {
    "flash": ("ours: flash", "#d62728", "o", "-"),
    "standard": ("ours: standard", "#7f7f7f", "s", "--"),
    "torch-cudnn": ("torch SDPA cuDNN", "#1f77b4", "^", "-"),
    "torch-flash": ("torch SDPA flash (FA2)", "#2ca02c", "v", "-"),
    "torch-efficient": ("torch SDPA mem-efficient", "#9467bd", "D", ":"),
    "torch-math": ("torch SDPA math", "#8c564b", "x", "--"),
    "torch-cpu-flash": ("torch CPU flash", "#1f77b4", "^", "-"),
    "torch-cpu-math": ("torch CPU math", "#8c564b", "x", "--"),
    "numpy-standard": ("NumPy standard", "#ff7f0e", "x", "--"),
}


def load(paths: list[str]) -> tuple[list[dict], list[dict]]:
    """Records of all files (a later file wins on the same case, unless it skipped it) and the headers."""
    merged: dict[tuple, dict] = {}
    headers = []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        headers.append({k: v for k, v in report.items() if k != "records"} | {"path": path})
        for r in report["records"]:
            key = (r["impl"], r["dtype"], r["batch"], r["heads_q"], r["seqlen_q"], r["seqlen_k"], r["head_dim"],
                   r["causal"], r["pass"])
            if r["status"] == "skipped" and key in merged:
                continue  # a case a later run had no time for keeps the earlier measurement
            merged[key] = r
    return list(merged.values()), headers


def rate(r: dict, cpu: bool) -> float:
    return r["tflops"] * (1000 if cpu else 1)


def is_grid(r: dict, cpu: bool) -> bool:
    """Records of the throughput grid (batch·seqlen fixed) rather than the scaling or long runs."""
    tokens = r["batch"] * r["seqlen_q"]
    return (tokens == 4096 and r["heads_q"] == 8) if cpu else (tokens == 16384 and r["heads_q"] * r["head_dim"] == 2048)


def is_kernel_grid(r: dict) -> bool:
    """Records of the CPU-kernel grid: batch 1, 8 heads, N 1024-16384."""
    return r["batch"] == 1 and r["heads_q"] == 8 and r["seqlen_q"] >= 1024


def throughput_figures(records, out_dir, prefix, cpu, dtype, tag="", select=None) -> list[str]:
    """Figure (a) for one dtype; `tag` goes into the file names of every dtype but the first."""
    written = []
    select = select or (lambda r: is_grid(r, cpu))
    grid = [r for r in records if r["dtype"] == dtype and select(r)]
    dims = sorted({r["head_dim"] for r in grid})
    if not dims:
        return written
    for pass_name in ("forward", "backward", "forward_backward"):
        rows = [r for r in grid if r["pass"] == pass_name]
        if not any(r["status"] == "ok" for r in rows):
            continue
        fig, axes = plt.subplots(len(dims), 2, figsize=(11, 3.3 * len(dims)), squeeze=False)
        for row, d in enumerate(dims):
            for col, causal in enumerate((False, True)):
                ax = axes[row][col]
                for impl, (label, color, marker, line) in STYLE.items():
                    pts = sorted((r["seqlen_q"], rate(r, cpu)) for r in rows
                                 if r["impl"] == impl and r["head_dim"] == d and r["causal"] == causal
                                 and r["status"] == "ok")
                    if pts:
                        ax.plot(*zip(*pts), marker=marker, linestyle=line, color=color, label=label)
                ax.set_xscale("log", base=2)
                ax.set_title(f"head_dim {d}, {'causal' if causal else 'non-causal'}", fontsize=10)
                ax.set_xlabel("sequence length N")
                ax.set_ylabel("GFLOP/s" if cpu else "TFLOP/s")
                ax.set_ylim(bottom=0)
                ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        device = grid[0]["device"]
        fig.suptitle(f"{pass_name.replace('_', ' + ')}, {dtype}, {device}", y=0.995, fontsize=11)
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.975), ncol=min(len(labels), 6),
                   fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        name = f"{prefix}{tag}-throughput-{pass_name}.png"
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def scaling_records(records, cpu, dtype):
    """One problem per sequence, growing N: the scaling sweep (batch 1) plus, on the GPU, the
    FlashAttention grid's cases with the same per-sequence problem (16 heads of d 128, batch
    16384 / N), compared per sequence."""
    heads, dim = (1, 64) if cpu else (16, 128)
    return [r for r in records if r["pass"] == "forward" and not r["causal"] and r["heads_q"] == heads
            and r["dtype"] == dtype and r["status"] != "skipped"
            and r["head_dim"] == dim and (r["batch"] == 1 or not cpu)
            and r["impl"] in ("flash", "standard", "torch-math", "torch-cudnn", "numpy-standard", "torch-cpu-math")]


def scaling_figure(records, out_dir, prefix, cpu, dtype) -> str | None:
    rows = scaling_records(records, cpu, dtype)
    if not any(r["status"] == "ok" for r in rows):
        return None
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    marks = 0  # out-of-memory labels are stacked so that two at one N stay readable
    for impl in ("standard", "torch-math", "numpy-standard", "torch-cpu-math", "torch-cudnn", "flash"):
        label, color, marker, line = STYLE[impl]
        # Where the sweep (batch 1) and the grid (batch 16384 / N) share an N, the larger batch
        # fills the device and gives the representative per-sequence cost.
        best = {}
        for r in rows:
            if r["impl"] == impl and r["status"] == "ok" and r["peak_bytes"] is not None:
                if r["seqlen_q"] not in best or r["batch"] > best[r["seqlen_q"]]["batch"]:
                    best[r["seqlen_q"]] = r
        ok = sorted((n, r["median_ms"] / r["batch"], r["peak_bytes"] / r["batch"]) for n, r in best.items())
        if ok:
            ax_t.plot([p[0] for p in ok], [p[1] for p in ok], marker=marker, linestyle=line, color=color, label=label)
            ax_m.plot([p[0] for p in ok], [p[2] / 2**20 for p in ok], marker=marker, linestyle=line, color=color,
                      label=label)
        oom = sorted(r["seqlen_q"] for r in rows if r["impl"] == impl and r["status"] == "out_of_memory")
        if oom:
            for ax in (ax_t, ax_m):
                ax.axvline(oom[0], color=color, linestyle=":", alpha=0.8)
                ax.annotate(f"{label}:\nout of memory\nat N={oom[0]}", xy=(oom[0], 0.42 - 0.17 * marks),
                            xycoords=("data", "axes fraction"), fontsize=8, color=color, ha="right")
            marks += 1
    dtype = rows[0]["dtype"]
    h, d = rows[0]["heads_q"], rows[0]["head_dim"]
    for ax, title, unit in ((ax_t, "forward time per sequence", "ms"), (ax_m, "peak memory per sequence", "MiB")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(unit)
        ax.set_title(f"{title} ({h} head{'s' if h > 1 else ''}, d={d}, {dtype})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{rows[0]['device']}: per-sequence time and memory (a case's value / its batch)", fontsize=10)
    fig.tight_layout()
    name = f"{prefix}-scaling.png"
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    return name


def memory_access_figure(ncu_paths: list[str], out_dir: str) -> tuple[str | None, list[str]]:
    recs, device = [], ""
    for path in ncu_paths:
        with open(path) as f:
            report = json.load(f)
        device = report["device"]
        recs += [r for r in report["records"] if r.get("status") == "ok"]
    if not recs:
        return None, []
    first = recs[0]
    b, h, d = first["batch"], first["heads"], first["head_dim"]
    element = 2 if first["dtype"] in ("bf16", "fp16", "bfloat16", "float16") else 4
    lengths = sorted({r["seqlen"] for r in recs})
    span = [2 ** k for k in range(int(math.log2(lengths[0])), int(math.log2(lengths[-1])) + 1)]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot(span, [b * h * standard_forward_bytes(n, d, element, score_bytes=element) for n in span], color="#8c564b",
            linestyle="--", label=f"model: standard, S/P in {8 * element}-bit  (4Nd + 4N² accesses)")
    ax.plot(span, [b * h * standard_forward_bytes(n, d, element, score_bytes=4) for n in span], color="#7f7f7f",
            linestyle="--", label="model: standard, S/P in fp32")
    ax.plot(span, [b * h * flash_forward_bytes(n, d, element, block_rows=128) for n in span], color="#d62728",
            linestyle="--", label="model: flash, K/V re-read per 128-row Q block (Θ(N²d²/M))")
    ax.plot(span, [b * h * 4 * n * d * element for n in span], color="#d62728", linestyle=":", alpha=0.6,
            label="lower bound: read Q, K, V, write O once (4Nd)")
    table = []
    for impl in sorted({r["impl"] for r in recs}):
        pts = sorted((r["seqlen"], r["bytes_read"] + r["bytes_written"]) for r in recs if r["impl"] == impl)
        label, color, marker, _ = STYLE.get(impl, (impl, "black", "o", "-"))
        ax.plot(*zip(*pts), marker=marker, linestyle="none", markersize=8, color=color, label=f"ncu: {label}")
        for n, total in pts:
            table.append(f"| {label} | {n} | {total / 1e6:,.1f} | "
                         f"{total / (b * h * 4 * n * d * element):.1f} |")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("bytes read + written in device memory")
    ax.set_title(f"one forward, batch {b}, {h} heads, d={d}: {device}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    name = "gpu-memory-access.png"
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    lines = ["| implementation | N | MB read + written (ncu) | × minimum (4·N·d per head) |", "|---|---|---|---|"] + table
    return name, lines


def ratio_table(records, cpu, dtype, select=None, peak=None) -> list[str]:
    """Ours (flash) against each peer present, per case of the throughput grid; with `peak`
    (the probed FMA peak, GFLOP/s) ours also as a percentage of it."""
    select = select or (lambda r: is_grid(r, cpu))
    grid = [r for r in records if r["dtype"] == dtype and select(r) and r["status"] == "ok"]
    by_key = defaultdict(dict)
    for r in grid:
        by_key[(r["pass"], r["head_dim"], r["causal"], r["seqlen_q"])][r["impl"]] = rate(r, cpu)
    peers = [p for p in STYLE if p not in ("flash",) and any(p in v for v in by_key.values())]
    if not any("flash" in v for v in by_key.values()):
        return []
    unit = "GFLOP/s" if cpu else "TFLOP/s"
    head = f"| pass | d | causal | N | ours flash {unit} | " + " | ".join(f"{STYLE[p][0]}" for p in peers) + " |"
    lines = [head, "|" + "---|" * (5 + len(peers))]
    order = {"forward": 0, "backward": 1, "forward_backward": 2}
    ratios = defaultdict(list)  # (pass, peer) -> ours / peer over the grid
    for key in sorted(by_key, key=lambda k: (order[k[0]], k[1], k[2], k[3])):
        v = by_key[key]
        if "flash" not in v:
            continue
        for p in peers:
            if p in v:
                ratios[(key[0], p)].append(v["flash"] / v[p])
        cells = [f"{v[p]:.1f} ({v['flash'] / v[p]:.2f}×)" if p in v else "-" for p in peers]
        ours = f"{v['flash']:.1f}" + (f" ({100 * v['flash'] / peak:.0f} %)" if peak else "")
        lines.append(f"| {key[0]} | {key[1]} | {'yes' if key[2] else 'no'} | {key[3]} | {ours} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Geometric mean of ours / peer over the cases above that both measured:", "",
              "| pass | " + " | ".join(STYLE[p][0] for p in peers) + " |", "|" + "---|" * (1 + len(peers))]
    for pass_name in sorted({k[0] for k in ratios}, key=order.get):
        cells = []
        for p in peers:
            values = ratios.get((pass_name, p), [])
            cells.append(f"{math.exp(sum(map(math.log, values)) / len(values)):.3f} ({len(values)} cases)" if values else "-")
        lines.append(f"| {pass_name} | " + " | ".join(cells) + " |")
    return lines


def plain_table(rows: list[dict], cpu: bool) -> list[str]:
    lines = ["| impl | pass | b | h | N | d | causal | median ms | peak MiB | status |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["impl"], r["pass"], r["seqlen_q"])):
        ms = f"{r['median_ms']:.2f}" if r["median_ms"] is not None else "-"
        pk = f"{r['peak_bytes'] / 2**20:,.1f}" if r["peak_bytes"] is not None else "-"
        status = r["status"] + (f": {r['note'][:90]}" if r["status"] != "ok" and r["note"] else "")
        lines.append(f"| {r['impl']} | {r['pass']} | {r['batch']} | {r['heads_q']} | {r['seqlen_q']} | {r['head_dim']} | "
                     f"{'yes' if r['causal'] else 'no'} | {ms} | {pk} | {status} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", nargs="*", default=[], help="GPU JSON files (ours and peers)")
    parser.add_argument("--cpu", nargs="*", default=[], help="CPU JSON files (ours and peers)")
    parser.add_argument("--ncu", nargs="*", default=[], help="ncu_dram.py JSON files")
    parser.add_argument("--cpu-kernels", nargs="*", default=[],
                        help="CPU-kernel grid JSON files (benchmarks/cpu-bench.sh kernels: ours and torch)")
    parser.add_argument("--gpu-dtypes", default="bfloat16,float16",
                        help="comma list; figure (b) and the file names without a dtype tag use the first")
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    summary = ["# Benchmark results", "",
               "Generated by `benchmarks/plot.py` from the JSON files named below (each names its device and "
               "date); ratios are ours / peer, above 1 means ours is faster. Schema and method: "
               "[benchmarks/README.md](../../benchmarks/README.md).", "",
               "Reproduce: GPU, one device call: `scripts/device-bench.sh full` (carry the release binary, see the "
               "script); CPU: `benchmarks/cpu-bench.sh`; then `benchmarks/plot.py` with the files below.", ""]
    gpu_dtypes = args.gpu_dtypes.split(",")
    for prefix, paths, cpu, dtypes in (("gpu", args.gpu, False, gpu_dtypes), ("cpu", args.cpu, True, ["float32"])):
        if not paths:
            continue
        dtype = dtypes[0]
        records, headers = load(paths)
        summary.append(f"## {'GPU' if not cpu else 'CPU'}: {headers[0]['device']}")
        summary.append("")
        for header in headers:
            extra = f", FMA peak {header['fma_peak_gflops']:.0f} GFLOP/s" if header.get("fma_peak_gflops") else ""
            software = header.get("software") or {}
            if software.get("loadavg_start"):
                extra += f", load average {software['loadavg_start'].split()[0]} → {software.get('loadavg_end', '?').split()[0]} (2 cores)"
            summary.append(f"- `{os.path.basename(header['path'])}`: {header['generator']}, {header['created']}{extra}")
        summary.append("")
        names = throughput_figures(records, args.out, prefix, cpu, dtype)
        scaling = scaling_figure(records, args.out, prefix, cpu, dtype)
        for name in names + ([scaling] if scaling else []):
            summary.append(f"![{name}]({name})")
        summary.append("")
        for other in dtypes:
            if other != dtype:
                tag = "-" + {"float16": "fp16", "bfloat16": "bf16"}.get(other, other)
                summary += [f"![{name}]({name})" for name in throughput_figures(records, args.out, prefix, cpu, other, tag)]
                summary.append("")
            table = ratio_table(records, cpu, other)
            if table:
                summary += [f"### Throughput, {other} (ours / peer in parentheses)", ""] + table + [""]
        rows = scaling_records(records, cpu, dtype)
        if rows:
            summary += ["### Scaling (forward; per-sequence problem fixed, N grows)", ""] + plain_table(rows, cpu) + [""]
        longs = [r for r in records if r["batch"] == 1 and r["heads_q"] == 1 and r["seqlen_q"] >= (1 << 17)]
        if longs:
            summary += ["### Long context (one head)", ""] + plain_table(longs, cpu) + [""]
    if args.cpu_kernels:
        records, headers = load(args.cpu_kernels)
        peak = next((h["fma_peak_gflops"] for h in headers if h.get("fma_peak_gflops")), None)
        summary += [f"## CPU kernels: batch 1, 8 heads, N 1024-16384 ({headers[0]['device']})", ""]
        for header in headers:
            software = header.get("software") or {}
            load_text = (f", load average {software['loadavg_start'].split()[0]} → "
                         f"{software.get('loadavg_end', '?').split()[0]}") if software.get("loadavg_start") else ""
            peak_text = f", FMA peak {header['fma_peak_gflops']:.0f} GFLOP/s" if header.get("fma_peak_gflops") else ""
            rounds = header.get("rounds") or []
            rounds_text = (f", best of {len(rounds)} alternated rounds per case ({rounds[0]['created']} … "
                           f"{rounds[-1]['created']}, `cpu_best_of.py`)") if len(rounds) > 1 else ""
            summary.append(f"- `{os.path.basename(header['path'])}`: {header['generator']}, {header['created']}"
                           f"{peak_text}{load_text}{rounds_text}")
        summary.append("")
        names = throughput_figures(records, args.out, "cpu-kernels", True, "float32", select=is_kernel_grid)
        summary += [f"![{name}]({name})" for name in names] + [""]
        table = ratio_table(records, True, "float32", select=is_kernel_grid, peak=peak)
        if table:
            summary += ["### Throughput, float32, ours (percent of the probed peak) / peer", ""] + table + [""]
    if args.ncu:
        name, lines = memory_access_figure(args.ncu, args.out)
        if name:
            summary += ["## Device-memory traffic of one forward (ncu)", "", f"![{name}]({name})", ""] + lines + [""]
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("\n".join(summary) + "\n")
    print(f"wrote {args.out}/README.md")


if __name__ == "__main__":
    main()
