#!/usr/bin/env python3
"""Per-call host overhead of flash_attn_func against F.scaled_dot_product_attention.

A tiny forward (default batch 1, 8 heads, N 128, d 64) called back to back: per round, each
variant runs `--calls` calls with no synchronization inside the loop; `host_us` is the loop's
time per call (the CPU time to issue a call while the GPU queue has room), `wall_us` adds the
final torch.cuda.synchronize (the rate the GPU sustains). Variants alternate round by round on
the same inputs, and the median over rounds is reported. On the CPU the two numbers are the
same thing (the call returns when done), and the problem's compute is part of it: use
--shape 1 1 1 8 to see the overhead alone.

Variants: ours (flash_attn_func: the eager fast path), ours_op (the registered
torch.ops.flash_attention_swift.fwd, what torch.compile calls), ours_library (the library call
alone with descriptors packed once: what remains of ours without Python), sdpa (default
backend choice), and on CUDA sdpa_flash and sdpa_cudnn; with --grad the inputs require grad
(the forward records the graph).

    python python/benchmarks/overhead.py --device cuda --json out/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import flash_attention_swift as fas
from flash_attention_swift import _calls


def sdpa_variant(q, k, v, backend=None):
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # SDPA wants (batch, heads, seqlen, dim)

    if backend is None:
        return lambda: F.scaled_dot_product_attention(qt, kt, vt)
    from torch.nn.attention import sdpa_kernel

    def call():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(qt, kt, vt)

    return call


def library_only(q, k, v):
    """The C call on descriptors packed once: the library's own per-call cost."""
    import ctypes

    keep = _calls.forward(q.detach(), k.detach(), v.detach(), q.shape[-1] ** -0.5, False, -1, -1, 0.0)
    # A private copy of the descriptors: the per-thread buffer is repacked by every other call.
    descriptors = _calls._buffers.forward
    own = ctypes.create_string_buffer(descriptors.buffer.raw, len(descriptors.buffer))
    base = ctypes.addressof(own)
    args = tuple(base + i * ctypes.sizeof(fas._library.FaTensor) for i in range(6))
    device = q.get_device()
    stream = _calls._current_stream(device) if q.is_cuda else None
    function = _calls.library().fa_forward

    def call():
        keep, own  # the outputs the descriptors point at, and the descriptors, stay alive
        return function(*args, stream)

    return call


def variants(q, k, v, device):
    scale = q.shape[-1] ** -0.5
    table = {
        "ours": lambda: fas.flash_attn_func(q, k, v),
        "ours_op": lambda: torch.ops.flash_attention_swift.fwd(q, k, v, scale, False, -1, -1, 0.0, False),
        "sdpa": sdpa_variant(q, k, v),
    }
    if not q.requires_grad:
        table["ours_library"] = library_only(q, k, v)
    if device == "cuda":
        from torch.nn.attention import SDPBackend

        table["sdpa_flash"] = sdpa_variant(q, k, v, SDPBackend.FLASH_ATTENTION)
        table["sdpa_cudnn"] = sdpa_variant(q, k, v, SDPBackend.CUDNN_ATTENTION)
    return table


def measure(call, calls: int, synchronize) -> tuple[float, float]:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    issued = time.perf_counter_ns()
    synchronize()
    finished = time.perf_counter_ns()
    return (issued - start) / calls / 1000, (finished - start) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float16, bfloat16, float32 (default bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--shape", type=int, nargs=4, default=(1, 8, 128, 64), metavar=("BATCH", "HEADS", "N", "D"))
    parser.add_argument("--calls", type=int, default=200, help="calls per round (keep under the GPU's launch queue)")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--grad", action="store_true", help="inputs require grad")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    device = args.device
    dtype = getattr(torch, args.dtype or ("bfloat16" if device == "cuda" else "float32"))
    batch, heads, seqlen, head_dim = args.shape
    q, k, v = (
        torch.randn(batch, seqlen, heads, head_dim, device=device, dtype=dtype).requires_grad_(args.grad) for _ in range(3)
    )
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    table = variants(q, k, v, device)
    available = {}
    for name, call in table.items():
        try:
            for _ in range(20):
                call()
            synchronize()
            available[name] = call
        except Exception as error:  # noqa: BLE001 - a backend this torch/GPU lacks is reported, not fatal
            print(f"{name}: unavailable ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
    samples = {name: ([], []) for name in available}
    for _ in range(args.rounds):
        for name, call in available.items():
            host, wall = measure(call, args.calls, synchronize)
            samples[name][0].append(host)
            samples[name][1].append(wall)

    results = {
        name: {"host_us": statistics.median(host), "wall_us": statistics.median(wall)}
        for name, (host, wall) in samples.items()
    }
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or 'cpu'}), "
          f"{dtype}, shape (batch, heads, N, d) = {tuple(args.shape)}, grad {args.grad}, "
          f"{args.rounds} rounds x {args.calls} calls, load {os.getloadavg()[0]:.2f}")
    print(f"{'variant':<14}{'host us/call':>14}{'wall us/call':>14}")
    for name, result in results.items():
        print(f"{name:<14}{result['host_us']:>14.2f}{result['wall_us']:>14.2f}")
    if "sdpa" in results:
        print(f"ours - sdpa: host {results['ours']['host_us'] - results['sdpa']['host_us']:+.2f} us, "
              f"wall {results['ours']['wall_us'] - results['sdpa']['wall_us']:+.2f} us")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        record = {
            "benchmark": "overhead",
            "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
            "dtype": str(dtype).removeprefix("torch."),
            "shape": dict(zip(("batch", "heads", "seqlen", "head_dim"), args.shape)),
            "grad": args.grad,
            "rounds": args.rounds,
            "calls_per_round": args.calls,
            "torch": torch.__version__,
            "library": fas.library_version(),
            "load_average": os.getloadavg()[0],
            "results": results,
        }
        with open(args.json, "w") as file:
            json.dump(record, file, indent=2)


if __name__ == "__main__":
    main()
