#!/usr/bin/env python3
"""cuDNN's fp8 (e4m3) SDPA forward timed on the grid of `flash-attention bench` (issue #18's peer).

PyTorch's SDPA has no fp8 path, so this builds cuDNN's fp8 attention graph through the cuDNN
frontend's Python bindings (`pip install nvidia-cudnn-frontend`; the bindings load the libcudnn
that torch already loaded, so torch is imported first). Inputs: our layout [batch, seqlen, heads,
head_dim], random normal values quantised to float8_e4m3fn, every descale and scale factor 1.
On Hopper cuDNN's fp8 graph writes O in e4m3 too (FlashAttention-3 and ours write bf16); it runs in
inference mode (no softmax statistics), the cheapest form cuDNN offers. Timing as
torch_sdpa.py's: CUDA events around each run after warm-up, the median of --reps. FLOPs by the
FlashAttention papers' count (4·b·h·N²·d, halved when causal), as ours.

Before timing, each head dim's smallest shape is checked against PyTorch's bf16 SDPA on the same
(dequantised) inputs: the relative max error goes into the record's note, and a case whose
error exceeds 0.25 is marked status "wrong" (an fp8 output carries ~6 % relative rounding).

    python3 benchmarks/peers/cudnn_fp8_sdpa.py --head-dims 128,256 --seqlens 8192,16384 --json out.json
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    import cudnn
except Exception as error:  # no torch, no GPU build or no frontend: say so and stop cleanly
    print(f"cudnn_fp8_sdpa.py: torch or the cuDNN frontend is not usable here ({error}); nothing measured",
          file=sys.stderr)
    sys.exit(3)

DTYPE = "float8_e4m3fn"


class FP8Attention:
    """One built cuDNN fp8 SDPA graph for a shape, with its inputs and workspace."""

    def __init__(self, case: bc.Case, handle, q, k, v):
        b, n, h, d = q.shape
        dims = [b, h, n, d]
        strides = [n * h * d, d, h * d, 1]  # our [b, N, h, d] memory seen as cuDNN's (b, h, s, d)
        e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32,
                              handle=handle)
        tq, tk, tv = (graph.tensor(name=name, dim=dims, stride=strides, data_type=e4m3) for name in "qkv")
        scalars = [graph.tensor(name=name, dim=[1, 1, 1, 1], stride=[1, 1, 1, 1], data_type=fp32)
                   for name in ("descale_q", "descale_k", "descale_v", "descale_s", "scale_s", "scale_o")]
        out, _, amax_s, amax_o = graph.sdpa_fp8(
            q=tq, k=tk, v=tv, descale_q=scalars[0], descale_k=scalars[1], descale_v=scalars[2],
            descale_s=scalars[3], scale_s=scalars[4], scale_o=scalars[5], is_inference=True,
            attn_scale=1.0 / math.sqrt(d), use_causal_mask=case.causal, name="sdpa_fp8")
        out.set_output(True).set_dim(dims).set_stride(strides).set_data_type(e4m3)
        for amax in (amax_s, amax_o):
            amax.set_output(True).set_dim([1, 1, 1, 1]).set_stride([1, 1, 1, 1]).set_data_type(fp32)
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        self.graph, self.handle = graph, handle
        self.o = torch.empty_like(q)
        one = torch.ones(1, 1, 1, 1, dtype=torch.float32, device=q.device)
        self.amax = [torch.zeros(1, 1, 1, 1, dtype=torch.float32, device=q.device) for _ in range(2)]
        self.pack = {tq: q, tk: k, tv: v, out: self.o, amax_s: self.amax[0], amax_o: self.amax[1]}
        for scalar in scalars:
            self.pack[scalar] = one
        self.workspace = torch.empty(max(1, graph.get_workspace_size()), dtype=torch.uint8, device=q.device)

    def __call__(self):
        self.graph.execute(self.pack, self.workspace, handle=self.handle)


def inputs(case: bc.Case, generator):
    shape = (case.batch, case.seqlen, case.heads, case.head_dim)
    return [torch.randn(shape, device="cuda", generator=generator).to(torch.float8_e4m3fn) for _ in range(3)]


def relative_error(case: bc.Case, run: FP8Attention, q, k, v) -> float:
    """max |O_cudnn - O_ref| / max |O_ref| against bf16 SDPA on the dequantised inputs."""
    run()
    torch.cuda.synchronize()
    ref = F.scaled_dot_product_attention(*(t.to(torch.bfloat16).transpose(1, 2) for t in (q, k, v)),
                                         is_causal=case.causal).transpose(1, 2).float()
    got = run.o.float()
    if not torch.isfinite(got).all():
        return float("inf")
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def time_runs(run: FP8Attention, reps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        run()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for start, end in zip(starts, ends):
        start.record()
        run()
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head-dims", default="128,256")
    parser.add_argument("--seqlens", default="8192,16384")
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="no")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("cudnn_fp8_sdpa.py: no CUDA device; nothing measured", file=sys.stderr)
        sys.exit(3)
    causal = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    cases = bc.grid("flash", [DTYPE], [int(x) for x in args.head_dims.split(",")],
                    [int(x) for x in args.seqlens.split(",")], causal)
    device_name = torch.cuda.get_device_name()
    handle = cudnn.create_handle()
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream().cuda_stream)
    generator = torch.Generator(device="cuda").manual_seed(args.seed)
    records, checked = [], {}
    print(f"{'case':48} {'ms':>9} {'TFLOP/s':>9}  note", flush=True)
    for case in cases:
        try:
            q, k, v = inputs(case, generator)
            run = FP8Attention(case, handle, q, k, v)
            note, status = "", "ok"
            key = (case.head_dim, case.causal)
            if key not in checked:  # one accuracy check per head dim and mask
                checked[key] = relative_error(case, run, q, k, v)
                note = f"relative max error vs bf16 SDPA {checked[key]:.3g} (N={case.seqlen})"
                status = "ok" if checked[key] <= 0.25 else "wrong"
            rec = bc.record("cuda", "cudnn-fp8", case, "forward", device_name, status=status,
                            times_ms=time_runs(run, args.reps, args.warmup), note=note)
            del run, q, k, v
        except Exception as error:  # an unsupported shape or a build failure: recorded, not fatal
            rec = bc.record("cuda", "cudnn-fp8", case, "forward", device_name, status="failed",
                            note=f"{type(error).__name__}: {str(error)[:300]}")
        records.append(rec)
        shown = f"{rec['median_ms']:9.3f} {rec['tflops']:9.1f}" if rec["median_ms"] else f"{'-':>9} {'-':>9}"
        print(f"{case.label():48} {shown}  {rec['status']} {rec['note']}", flush=True)
        torch.cuda.empty_cache()
    if args.json:
        software = {"torch": torch.__version__, "cudnn": cudnn.backend_version(),
                    "cudnn_frontend": getattr(cudnn, "__version__", "?"), "python": sys.version.split()[0]}
        bc.write_report(args.json, "benchmarks/peers/cudnn_fp8_sdpa.py", "cuda", device_name, records, software)


if __name__ == "__main__":
    main()
