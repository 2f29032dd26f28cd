#!/usr/bin/env python3
"""Weak scaling of ring attention over NCCL: a fixed number of tokens per GPU on W GPUs (one
torchrun launch per W), bf16, head dim 128, causal, zigzag by default.

efficiency = (single-GPU time of the whole W x tokens-per-GPU sequence / W) / ring time

i.e. the single-GPU time for one GPU's share of the work over the measured time (1.0: perfect
scaling; the causal work of the whole sequence divided evenly). Every rank times the single-GPU
call on the whole sequence on its own GPU (all GPUs at once, the median taken), and the ring on
its shard; the ring's time is the slowest rank's, each round ending at a barrier. The two
alternate round by round. Forward, and forward + backward, each reported.

Before timing, a small check with NCCL: the ring's out and dq/dk/dv gathered against float64
standard attention on the whole (small) sequence, FlashAttention's rule with W-1 bf16 roundings
(exit status 1 if it fails).

    for n in 2 4 8; do
      torchrun --standalone --nproc-per-node $n python/benchmarks/context_parallel_scaling.py \\
        --tokens-per-gpu 131072 --json out/context_parallel_scaling_$n.json
    done
    # 8 x 131072 = 1M tokens; --layout contiguous for the unbalanced layout; --no-causal.
    # CPU smoke run (gloo): torchrun --standalone --nproc-per-node 2 .../context_parallel_scaling.py \\
    #   --device cpu --dtype float32 --tokens-per-gpu 256 --heads 2 --rounds 1 --warmup 0
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import torch
import torch.distributed as dist

import flash_attention_swift as fas
from flash_attention_swift.context_parallel import ring_flash_attn_func, shard, unshard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _context_parallel_common as common  # noqa: E402


def gather_whole(tensor, layout):
    pieces = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(pieces, tensor.contiguous())
    return unshard(pieces, layout)


def check(args, device, dtype) -> dict:
    world, rank = dist.get_world_size(), dist.get_rank()
    seqlen = 2 * world * args.check_chunk
    q, k, v, dout = common.inputs(1, seqlen, args.check_heads, args.check_heads, args.head_dim, dtype, device, 1)
    local = [shard(t, rank, world, args.layout).requires_grad_() for t in (q, k, v)]
    out = ring_flash_attn_func(*local, causal=args.causal, layout=args.layout)
    gradients = torch.autograd.grad(out, local, shard(dout, rank, world, args.layout))
    actual = [gather_whole(t, args.layout) for t in (out, *gradients)]
    exact, same = common.reference_results(q, k, v, dout, args.causal)
    report = common.check(actual, exact, same, world)
    ok = all(r["ok"] for r in report.values())
    if rank == 0:
        print(f"check ({dist.get_backend()}, {seqlen} tokens): {'ok' if ok else 'FAILED'}  " + "  ".join(
            f"{name} {r['error']:.3g}/{r['allowed']:.3g}" for name, r in report.items()), flush=True)
    return {"seqlen": seqlen, "ok": ok, **report}


def slowest(seconds: float, device) -> float:
    value = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value.item()


def all_values(seconds: float, device) -> list:
    values = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(values, torch.tensor([seconds], dtype=torch.float64, device=device))
    return [v.item() for v in values]


def timing(args, device, dtype) -> dict:
    world, rank = dist.get_world_size(), dist.get_rank()
    seqlen = world * args.tokens_per_gpu
    q, k, v, dout = common.inputs(1, seqlen, args.heads, args.heads_kv, args.head_dim, dtype, device, 2)
    local = [shard(t, rank, world, args.layout).requires_grad_() for t in (q, k, v)]
    local_dout = shard(dout, rank, world, args.layout)
    whole = [t.clone().requires_grad_() for t in (q, k, v)]
    if args.skip_single:
        del whole
    timer = common.Timer(device)

    def ring_forward():
        with torch.no_grad():
            ring_flash_attn_func(*local, causal=args.causal, layout=args.layout)

    def ring_both():
        out = ring_flash_attn_func(*local, causal=args.causal, layout=args.layout)
        torch.autograd.grad(out, local, local_dout)

    def single_forward():
        with torch.no_grad():
            fas.flash_attn_func(q, k, v, causal=args.causal)

    def single_both():
        out = fas.flash_attn_func(*whole, causal=args.causal)
        torch.autograd.grad(out, whole, dout)

    samples = {"ring": {"forward": [], "forward_backward": []}, "single": {"forward": [], "forward_backward": []}}
    for round_index in range(args.warmup + args.rounds):
        measured = {}
        for kind, function in (("forward", ring_forward), ("forward_backward", ring_both)):
            dist.barrier()
            measured[("ring", kind)] = slowest(timer(function), device)
        if not args.skip_single:
            for kind, function in (("forward", single_forward), ("forward_backward", single_both)):
                dist.barrier()
                measured[("single", kind)] = common.median(all_values(timer(function), device))
        if round_index >= args.warmup:
            for (name, kind), seconds in measured.items():
                samples[name][kind].append(seconds)
    result = {"seqlen": seqlen, "tokens_per_gpu": args.tokens_per_gpu}
    for kind in ("forward", "forward_backward"):
        ring = common.median(samples["ring"][kind])
        single = common.median(samples["single"][kind]) if not args.skip_single else float("nan")
        flops = common.attention_flops(1, seqlen, args.heads, args.head_dim, args.causal, kind == "forward_backward")
        result[kind] = {
            "ring_s": ring, "ring_samples_s": samples["ring"][kind],
            "single_whole_s": single, "single_samples_s": samples["single"][kind],
            "efficiency": single / world / ring,
            "ring_tflops_per_gpu": flops / world / ring / 1e12,
        }
        if rank == 0:
            print(f"W={world} {kind:16s} ring {ring * 1e3:10.2f} ms  single(whole)/W {single / world * 1e3:10.2f} ms  "
                  f"efficiency {single / world / ring:.3f}  ({flops / world / ring / 1e12:.0f} TFLOP/s per GPU)", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(common.DTYPES))
    parser.add_argument("--tokens-per-gpu", type=int, default=131072, help="a multiple of 2 (zigzag)")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--heads-kv", type=int, default=None, help="default: --heads")
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--layout", default="zigzag", choices=["zigzag", "contiguous"])
    parser.add_argument("--no-causal", dest="causal", action="store_false")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--skip-single", action="store_true", help="time the ring only (no efficiency)")
    parser.add_argument("--check-chunk", type=int, default=64, help="tokens per chunk of the check (0: no check)")
    parser.add_argument("--check-heads", type=int, default=4)
    parser.add_argument("--json", default=None, help="rank 0 writes the results here")
    args = parser.parse_args()
    args.heads_kv = args.heads_kv or args.heads
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if args.device == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10), device_id=device if backend == "nccl" else None)
    dtype = common.DTYPES[args.dtype]
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"{world} x {name}, {backend}, {args.dtype}, d {args.head_dim}, heads {args.heads}/{args.heads_kv}, "
              f"{args.layout}, causal={args.causal}, {args.tokens_per_gpu} tokens per GPU, torch {torch.__version__}, "
              f"library {fas.library_version()}", flush=True)
    try:
        checked = check(args, device, dtype) if args.check_chunk else None
        result = timing(args, device, dtype)
        if rank == 0 and args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as file:
                json.dump({"world_size": world, "backend": backend, "arguments": vars(args), "check": checked, **result}, file, indent=2)
    finally:
        dist.destroy_process_group()
    return 0 if checked is None or checked["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
