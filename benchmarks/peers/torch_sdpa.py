#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention timed on the grid of `flash-attention bench`.

On CUDA it times each SDPA backend alone (cuDNN, flash = FlashAttention-2, memory-efficient,
math = standard attention materializing S and P) with CUDA events after warm-up, the median of
--reps runs, inputs rotated over enough sets that the working set exceeds twice the L2 cache.
On the CPU it times PyTorch's CPU SDPA (its default, flash-style kernel) and the math backend
with perf_counter. Inputs use our layout [batch, seqlen, heads, head_dim] (SDPA receives the
transposed view, so no copies), random normal values; forward runs with autograd on, as in
training, so the kernels also produce the log-sum-exp like ours.

Writes the JSON schema of benchmarks/README.md (--json FILE), a table on stdout, progress on
stderr (--quiet silences it).

    python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16,fp16 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
except Exception as error:  # a broken or missing torch: say so and stop cleanly
    print(f"torch_sdpa.py: PyTorch is not usable here ({error}); nothing measured", file=sys.stderr)
    sys.exit(3)

CUDA_IMPLS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
# On the CPU, SDPA's default picks its flash-style CPU kernel for these shapes; math is the
# materializing path.
CPU_IMPLS = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}

TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def make_set(case: bc.Case, device: str, grad: bool):
    """q, k, v, dout in [b, N, h, d] storage, returned as SDPA's [b, h, N, d] views."""
    dtype = TORCH_DTYPES[case.dtype]
    shape = (case.batch, case.seqlen, case.heads, case.head_dim)
    # The leaves require grad; SDPA and autograd.grad see their transposed views.
    tensors = [torch.randn(shape, device=device, dtype=dtype, requires_grad=grad and i < 3) for i in range(4)]
    q, k, v, dout = (t.transpose(1, 2) for t in tensors)
    return q, k, v, dout


def make_step(pass_name: str, sets: list, causal: bool, backend):
    """A function of the iteration index that runs one pass on input set i % len(sets)."""
    outs = []
    if pass_name == "backward":
        with sdpa_kernel([backend]):
            for q, k, v, _ in sets:
                outs.append(F.scaled_dot_product_attention(q, k, v, is_causal=causal))

    def step(i: int):
        q, k, v, dout = sets[i % len(sets)]
        with sdpa_kernel([backend]):
            if pass_name == "forward":
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            if pass_name == "backward":
                return torch.autograd.grad(outs[i % len(sets)], (q, k, v), dout, retain_graph=True)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            return torch.autograd.grad(out, (q, k, v), dout)

    return step


def time_cuda(step, reps: int, warmup: int) -> list[float]:
    for i in range(warmup):
        step(i)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        step(i)
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def time_cpu(step, reps: int, warmup: int, budget_s: float) -> list[float]:
    t0 = time.perf_counter()
    for i in range(max(1, warmup)):
        step(i)
    once = (time.perf_counter() - t0) / max(1, warmup)
    runs = max(3, min(reps, int(budget_s / max(once, 1e-9))))
    times = []
    for i in range(runs):
        t = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def cuda_peak(case, pass_name, backend) -> int:
    """Bytes the caching allocator held at most over one pass, inputs and outputs included."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    sets = [make_set(case, "cuda", True)]
    step = make_step(pass_name, sets, case.causal, backend)
    result = step(0)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del result, step, sets
    return peak


def cpu_oom_estimate(case: bc.Case, impl: str, pass_name: str) -> int | None:
    """Bytes the math path materializes (S, P and, backward, dP, dS), when it is known to not fit."""
    if impl != "math":
        return None
    matrix = case.batch * case.heads * case.seqlen * case.seqlen * 4
    need = matrix * (2 if pass_name == "forward" else 4)
    avail = bc.available_host_bytes()
    return need if avail is not None and need > 0.9 * avail else None


def run_case(case, impl, pass_name, args, device_name) -> dict:
    cuda = args.device == "cuda"
    backend = (CUDA_IMPLS if cuda else CPU_IMPLS)[impl]
    name = f"torch-{impl}" if cuda else f"torch-cpu-{impl}"
    backend_name = "cuda" if cuda else "cpu"
    try:
        if cuda:
            peak = cuda_peak(case, pass_name, backend)
            set_bytes = 5 * case.batch * case.seqlen * case.heads * case.head_dim * \
                TORCH_DTYPES[case.dtype].itemsize
            l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
            nsets = max(1, min(8, math.ceil(2 * l2 / set_bytes)))
            sets = [make_set(case, "cuda", True) for _ in range(nsets)]
            step = make_step(pass_name, sets, case.causal, backend)
            times = time_cuda(step, args.reps, args.warmup)
            note = f"{nsets} input sets"
        else:
            need = cpu_oom_estimate(case, impl, pass_name)
            if need is not None:
                return bc.record(backend_name, name, case, pass_name, device_name, status="out_of_memory",
                                 note=f"needs ~{need / 2**30:.1f} GiB for S, P (and dP, dS)")
            with bc.HostPeak() as hp:
                sets = [make_set(case, "cpu", True)]
                step = make_step(pass_name, sets, case.causal, backend)
                step(0)
            peak = hp.peak
            times = time_cpu(step, args.reps, 0, args.cpu_budget_s)
            note = ""
        del step, sets
        return bc.record(backend_name, name, case, pass_name, device_name, times_ms=times,
                         peak_bytes=peak, note=note)
    except torch.OutOfMemoryError as error:
        return bc.record(backend_name, name, case, pass_name, device_name, status="out_of_memory",
                         note=str(error).splitlines()[0][:160])
    except MemoryError:
        return bc.record(backend_name, name, case, pass_name, device_name, status="out_of_memory")
    except RuntimeError as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        status = "unsupported" if "No available kernel" in str(error) else "error"
        return bc.record(backend_name, name, case, pass_name, device_name, status=status, note=text[:200])
    except Exception as error:  # recorded, so one bad case never loses the sweep
        return bc.record(backend_name, name, case, pass_name, device_name, status="error",
                         note=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200])
    finally:
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


def profile_once(cases, impls, args) -> None:
    """One forward per case inside cudaProfilerStart/Stop, for `ncu --profile-from-start off`."""
    for case in cases:
        for impl in impls:
            backend = CUDA_IMPLS[impl]
            sets = [make_set(case, "cuda", False)]
            step = make_step("forward", sets, case.causal, backend)
            with torch.no_grad():
                step(0)  # warm-up outside the profiled range: plan building, autotuning
                torch.cuda.synchronize()
                torch.cuda.profiler.start()
                step(0)
                torch.cuda.synchronize()
                torch.cuda.profiler.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--grid", default=None,
                        help="flash | cpu | cpu-kernels | long-gpu | long-cpu | smoke | custom | decode")
    parser.add_argument("--decode-batches", default="1,4,16,64", help="decode grid: batches")
    parser.add_argument("--dtypes", default=None, help="comma list: bf16,fp16,fp32")
    parser.add_argument("--head-dims", default=None)
    parser.add_argument("--seqlens", default=None)
    parser.add_argument("--causal", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--batch", type=int, default=1, help="custom grid only")
    parser.add_argument("--heads", type=int, default=16, help="custom grid only")
    parser.add_argument("--impls", default=None, help="cuda: cudnn,flash,efficient,math; cpu: flash,math")
    parser.add_argument("--passes", default="forward,backward,forward_backward")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cpu-budget-s", type=float, default=1.0, help="CPU: timed seconds per case (3..reps runs)")
    parser.add_argument("--deadline-s", type=float, default=0, help="mark cases after this many seconds as skipped")
    parser.add_argument("--json", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--profile-once", action="store_true", help="one profiled forward per case (ncu)")
    args = parser.parse_args()

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("torch_sdpa.py: CUDA requested but torch sees no GPU", file=sys.stderr)
        sys.exit(3)
    if args.grid == "decode":  # KV-cache decoding shapes: their own timing and table
        import torch_sdpa_decode
        torch_sdpa_decode.run(args, [int(x) for x in args.decode_batches.split(",")],
                              [int(x) for x in args.seqlens.split(",")] if args.seqlens
                              else [1024, 4096, 8192, 16384, 32768, 65536, 131072])
        return

    ints = lambda text: [int(x) for x in text.split(",")] if text else None  # noqa: E731
    dtypes = [bc.DTYPE_NAMES[x] for x in (args.dtypes or ("bf16,fp16" if cuda else "fp32")).split(",")]
    causal = {"both": [False, True], "yes": [True], "no": [False]}[args.causal]
    preset = args.grid or ("flash" if cuda else "cpu")
    if preset == "custom":
        cases = [bc.Case(args.batch, args.heads, n, d, c, dt) for dt in dtypes
                 for d in ints(args.head_dims) or [64] for c in causal for n in ints(args.seqlens) or [1024]]
    else:
        cases = bc.grid(preset, dtypes, ints(args.head_dims), ints(args.seqlens), causal)
    impls = (args.impls or ("cudnn,flash,efficient,math" if cuda else "flash,math")).split(",")
    passes = args.passes.split(",")
    for p in passes:
        if p not in bc.PASSES:
            raise SystemExit(f"unknown pass {p!r}; use {', '.join(bc.PASSES)}")

    if args.profile_once:
        profile_once(cases, impls, args)
        return

    device_name = torch.cuda.get_device_name(0) if cuda else bc.cpu_name()
    progress = bc.Progress(len(cases) * len(impls) * len(passes), args.quiet)
    records, started = [], time.monotonic()
    for case in cases:
        for impl in impls:
            for pass_name in passes:
                if args.deadline_s and time.monotonic() - started > args.deadline_s:
                    r = bc.record("cuda" if cuda else "cpu", f"torch-{impl}" if cuda else f"torch-cpu-{impl}",
                                  case, pass_name, device_name, status="skipped", note="time budget spent")
                else:
                    r = run_case(case, impl, pass_name, args, device_name)
                records.append(r)
                shown = f"{r['median_ms']:.3f} ms, {r['tflops']:.1f} TFLOP/s" if r["median_ms"] else r["status"]
                progress.step(f"torch-{impl} {pass_name} {case.label()}: {shown}")

    software = {"torch": torch.__version__, "python": sys.version.split()[0]}
    if cuda:
        software["cuda"] = torch.version.cuda
        software["cudnn"] = torch.backends.cudnn.version()
    else:
        software["threads"] = torch.get_num_threads()
    if args.json:
        bc.write_report(args.json, "benchmarks/peers/torch_sdpa.py", "cuda" if cuda else "cpu",
                        device_name, records, software)
    bc.print_table(records)


if __name__ == "__main__":
    main()
