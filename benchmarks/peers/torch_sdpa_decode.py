"""`torch_sdpa.py --grid decode`: PyTorch SDPA on the decode shapes of `flash-attention bench
--grid decode` (non-paged): bf16, d 128, 32 query heads over 8 kv heads, one query token per
sequence against k/v of the cache length. Each backend (cuDNN, flash, efficient) is timed alone
under no_grad with CUDA events, the median of --reps runs, the L2 cache flushed before each
run. GQA goes through `enable_gqa=True` where the backend takes it, else through k/v repeated to
32 heads beforehand (noted "repeat": the kernel then reads 4x the bytes). Bandwidth is the bytes
of the 8-head K and V per second, the figure ours reports, beside torch's own device-to-device
copy bandwidth (read + write) of the same run.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

IMPLS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
         "efficient": SDPBackend.EFFICIENT_ATTENTION}
HEADS_Q, HEADS_KV, DIM = 32, 8, 128
CACHE_BYTES_LIMIT = 8 << 30


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def timed(step, flush, reps, warmup):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return median(samples)


def copy_bandwidth(reps, warmup, flush):
    source = torch.zeros(1 << 30, dtype=torch.uint8, device="cuda")
    destination = torch.empty_like(source)
    ms = timed(lambda: destination.copy_(source), flush, reps, warmup)
    del source, destination
    return 2 * (1 << 30) / (ms * 1e-3) / 1e9


def run(args, batches, seqlens) -> None:
    dtype = torch.float16 if (args.dtypes or "bf16").split(",")[0] in ("fp16", "float16") else torch.bfloat16
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    flush = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
    copy = copy_bandwidth(args.reps, args.warmup, flush)
    impls = (args.impls or "cudnn,flash,efficient").split(",")
    name = torch.cuda.get_device_name(0)
    print(f"device: {name}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    print(f"device-to-device copy (torch copy_, 1 GiB, read + write): {copy:.0f} GB/s")
    print(f"{'impl':<11}{'batch':<7}{'cache':<9}{'gqa':<8}{'us':<10}{'GB/s':<8}% of copy")
    records = []
    with torch.no_grad():
        for batch in batches:
            for tokens in seqlens:
                kv_bytes = batch * tokens * HEADS_KV * DIM * 2 * dtype.itemsize
                if kv_bytes > CACHE_BYTES_LIMIT:
                    continue
                q = torch.randn(batch, HEADS_Q, 1, DIM, device="cuda", dtype=dtype)
                k = torch.randn(batch, HEADS_KV, tokens, DIM, device="cuda", dtype=dtype)
                v = torch.randn(batch, HEADS_KV, tokens, DIM, device="cuda", dtype=dtype)
                for impl in impls:
                    record = {"impl": f"torch-{impl}", "batch": batch, "cache_tokens": tokens, "dtype": str(dtype)}
                    try:
                        try:
                            def step():
                                with sdpa_kernel([IMPLS[impl]]):
                                    return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                            step()
                            gqa = "native"
                        except (RuntimeError, TypeError):
                            group = HEADS_Q // HEADS_KV
                            kr, vr = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)

                            def step():
                                with sdpa_kernel([IMPLS[impl]]):
                                    return F.scaled_dot_product_attention(q, kr, vr)
                            step()
                            gqa = "repeat"
                        ms = timed(step, flush, args.reps, args.warmup)
                        record.update(status="ok", gqa=gqa, microseconds=ms * 1e3,
                                      gigabytes_per_second=kv_bytes / (ms * 1e-3) / 1e9)
                        print(f"{impl:<11}{batch:<7}{tokens:<9}{gqa:<8}{ms * 1e3:<10.1f}"
                              f"{record['gigabytes_per_second']:<8.0f}{100 * record['gigabytes_per_second'] / copy:.1f}")
                    except torch.OutOfMemoryError as error:
                        record.update(status="out_of_memory", note=str(error).splitlines()[0][:160])
                    except Exception as error:  # recorded, so one bad case never loses the sweep
                        record.update(status="error", note=f"{type(error).__name__}: {str(error)[:160]}")
                        print(f"{impl:<11}{batch:<7}{tokens:<9}{record['note']}", file=sys.stderr)
                    finally:
                        step = None
                        torch.cuda.empty_cache()
                    records.append(record)
                del q, k, v
                torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"tool": "benchmarks/peers/torch_sdpa.py --grid decode", "device": name,
                       "torch": torch.__version__, "copy_gigabytes_per_second": copy, "reps": args.reps,
                       "warmup": args.warmup, "records": records}, file, indent=1)
