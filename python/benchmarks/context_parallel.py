#!/usr/bin/env python3
"""Context parallelism on one device: the simulated ring (W ranks' shards in one process, every
ring step's blocks computed with the same block and merge code as the distributed ring, no
communication) checked against a float64 attention and timed against one flash_attn_func call on
the whole sequence.

1. Check (a small problem, --check-seqlen tokens): out and dq/dk/dv of the simulated ring for
   each W and layout against float64 standard attention, FlashAttention's rule (bf16: 2x a bf16
   standard attention's error plus W-1 bf16 roundings, one per extra block merged: the library
   returns each block's partial results in the storage dtype). Exit status 1 if any fails.
2. Time (--seqlen tokens): forward and forward+backward of one call on the whole sequence and of
   the simulated ring per W and layout, alternated round by round, medians. The ratio
   single / simulated is the ring's compute efficiency without communication: what block
   splitting, the zigzag halves and the LSE merges cost (an upper bound for the real ring's
   efficiency, which also waits for transfers the computation does not hide).

    python python/benchmarks/context_parallel.py --json out/context_parallel.json      # on the GPU
    python python/benchmarks/context_parallel.py --device cpu --dtype float32 --seqlen 512 \\
        --heads 2 --head-dim 64 --rounds 2 --check-seqlen 96     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

import flash_attention_swift as fas
from flash_attention_swift.context_parallel import shard, simulated_ring_flash_attn_func, unshard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _context_parallel_common as common  # noqa: E402


def simulated(q, k, v, world, layout, causal):
    """The shards (leaves), the ranks' outs, and the whole out."""
    shards = [[shard(t, r, world, layout).requires_grad_() for r in range(world)] for t in (q, k, v)]
    results = simulated_ring_flash_attn_func(*shards, causal=causal, layout=layout)
    return shards, [out for out, _ in results]


def simulated_gradients(q, k, v, dout, world, layout, causal):
    shards, outs = simulated(q, k, v, world, layout, causal)
    douts = [shard(dout, r, world, layout) for r in range(world)]
    gradients = torch.autograd.grad(outs, [t for group in shards for t in group], douts)
    whole = [unshard(list(gradients[i * world : (i + 1) * world]), layout) for i in range(3)]
    return [unshard(outs, layout), *whole]


def check(args, device, dtype) -> list:
    q, k, v, dout = common.inputs(1, args.check_seqlen, args.check_heads, args.check_heads_kv, args.head_dim, dtype, device, 1)
    exact, same = common.reference_results(q, k, v, dout, args.causal)
    rows = []
    for world in args.worlds:
        for layout in args.layouts:
            actual = simulated_gradients(q, k, v, dout, world, layout, args.causal)
            report = common.check(actual, exact, same, world)
            ok = all(r["ok"] for r in report.values())
            rows.append({"world": world, "layout": layout, "ok": ok, **report})
            print(f"check W={world} {layout:10s} {'ok' if ok else 'FAILED'}  " + "  ".join(
                f"{name} {r['error']:.3g}/{r['allowed']:.3g}" for name, r in report.items()
            ), flush=True)
    return rows


def timing(args, device, dtype) -> dict:
    q, k, v, dout = common.inputs(args.batch, args.seqlen, args.heads, args.heads_kv, args.head_dim, dtype, device, 2)
    timer = common.Timer(device)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]

    def single_forward():
        with torch.no_grad():
            fas.flash_attn_func(q, k, v, causal=args.causal)

    def single_both():
        out = fas.flash_attn_func(*leaves, causal=args.causal)
        torch.autograd.grad(out, leaves, dout)

    variants = {"single": (single_forward, single_both)}
    for world in args.worlds:
        for layout in args.layouts:
            shards = [[shard(t, r, world, layout).requires_grad_() for r in range(world)] for t in (q, k, v)]
            douts = [shard(dout, r, world, layout) for r in range(world)]

            def ring_forward(shards=shards, layout=layout):
                with torch.no_grad():
                    simulated_ring_flash_attn_func(*shards, causal=args.causal, layout=layout)

            def ring_both(shards=shards, douts=douts, layout=layout):
                results = simulated_ring_flash_attn_func(*shards, causal=args.causal, layout=layout)
                torch.autograd.grad([out for out, _ in results], [t for group in shards for t in group], douts)

            variants[f"W{world}-{layout}"] = (ring_forward, ring_both)
    times = {name: {"forward": [], "forward_backward": []} for name in variants}
    for round_index in range(args.warmup + args.rounds):
        for name, (forward, both) in variants.items():  # alternated: every variant once per round
            measured = (timer(forward), timer(both))
            if round_index >= args.warmup:
                times[name]["forward"].append(measured[0])
                times[name]["forward_backward"].append(measured[1])
    flops = {
        "forward": common.attention_flops(args.batch, args.seqlen, args.heads, args.head_dim, args.causal, False),
        "forward_backward": common.attention_flops(args.batch, args.seqlen, args.heads, args.head_dim, args.causal, True),
    }
    single = {kind: common.median(values) for kind, values in times["single"].items()}
    table = {}
    for name, kinds in times.items():
        row = {}
        for kind, values in kinds.items():
            seconds = common.median(values)
            row[kind] = {
                "median_s": seconds, "samples_s": values, "tflops": flops[kind] / seconds / 1e12,
                "single_over_this": single[kind] / seconds,
            }
        table[name] = row
        print(f"{name:16s} forward {row['forward']['median_s'] * 1e3:9.2f} ms ({row['forward']['single_over_this']:.3f})"
              f"  fwd+bwd {row['forward_backward']['median_s'] * 1e3:9.2f} ms ({row['forward_backward']['single_over_this']:.3f})", flush=True)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(common.DTYPES))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seqlen", type=int, default=32768, help="whole sequence (a multiple of 2 x every W)")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--heads-kv", type=int, default=None, help="default: --heads")
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--worlds", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8])
    parser.add_argument("--layouts", type=lambda s: s.split(","), default=["zigzag", "contiguous"])
    parser.add_argument("--no-causal", dest="causal", action="store_false")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--check-seqlen", type=int, default=2 * 8 * 48, help="the check's sequence (0: no check)")
    parser.add_argument("--check-heads", type=int, default=4)
    parser.add_argument("--check-heads-kv", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    args.heads_kv = args.heads_kv or args.heads
    device, dtype = torch.device(args.device), common.DTYPES[args.dtype]
    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"{args.dtype}, causal={args.causal}, torch {torch.__version__}, library {fas.library_version()}", flush=True)
    checks = check(args, device, dtype) if args.check_seqlen else []
    table = timing(args, device, dtype)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump({"arguments": vars(args), "device": str(device), "checks": checks, "timing": table}, file, indent=2)
    return 0 if all(row["ok"] for row in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
