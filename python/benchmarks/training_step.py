#!/usr/bin/env python3
"""Training step of a small decoder-only transformer with our attention against
F.scaled_dot_product_attention (cuDNN and FlashAttention-2 backends), and the attention's share.

Default model (the issue's): 12 layers, d_model 1024, 16 heads (head dim 64), MLP 4x, sequence
4096, batch 2, bf16 weights and activations, causal, vocabulary 8192, AdamW. One step = forward,
cross-entropy loss, backward, optimizer step. Per variant: the step time (CUDA events, median
of --steps after --warmup), and the attention alone (forward + backward of one layer's attention
on the same shapes, times the number of layers). Variants run alternately, round by round, each
with the same initial weights and batch.

    python python/benchmarks/training_step.py --out results/     # on the GPU
    python python/benchmarks/training_step.py --device cpu --layers 2 --d-model 128 --heads 4 \\
        --seqlen 256 --batch 1 --dtype float32 --steps 3 --warmup 1 --out /tmp/b   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

import flash_attention_swift as fas


def attention_function(name: str):
    """(q, k, v) -> out with q, k, v and out (batch, seqlen, heads, head_dim), causal."""
    if name == "ours":
        return lambda q, k, v: fas.flash_attn_func(q, k, v, causal=True)

    backend = None
    if name != "sdpa":
        from torch.nn.attention import SDPBackend

        backend = {"sdpa_cudnn": SDPBackend.CUDNN_ATTENTION, "sdpa_flash": SDPBackend.FLASH_ATTENTION}[name]

    def sdpa(q, k, v):
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if backend is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            from torch.nn.attention import sdpa_kernel

            with sdpa_kernel(backend):
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return out.transpose(1, 2)

    return sdpa


class Block(torch.nn.Module):
    def __init__(self, width: int, heads: int, attention):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.attention = attention
        self.norm1 = torch.nn.RMSNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width, bias=False)
        self.proj = torch.nn.Linear(width, width, bias=False)
        self.norm2 = torch.nn.RMSNorm(width)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(width, 4 * width, bias=False), torch.nn.GELU(), torch.nn.Linear(4 * width, width, bias=False)
        )

    def forward(self, x):
        batch, seqlen, width = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, seqlen, 3, self.heads, self.head_dim)
        q, k, v = qkv.unbind(2)  # (batch, seqlen, heads, head_dim) views, unit last stride
        x = x + self.proj(self.attention(q, k, v).reshape(batch, seqlen, width))
        return x + self.mlp(self.norm2(x))


class Model(torch.nn.Module):
    def __init__(self, vocab: int, width: int, heads: int, layers: int, attention):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.blocks = torch.nn.ModuleList(Block(width, heads, attention) for _ in range(layers))
        self.norm = torch.nn.RMSNorm(width)
        self.head = torch.nn.Linear(width, vocab, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class Timer:
    """Elapsed milliseconds of a region: CUDA events on the GPU, the wall clock on the CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __enter__(self):
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = (time.perf_counter() - self.wall) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--d-model", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--seqlen", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default=None, help="comma-separated: ours, sdpa, sdpa_cudnn, sdpa_flash")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--out", required=True, help="folder for training_step.json")
    args = parser.parse_args()

    device, dtype = args.device, getattr(torch, args.dtype)
    names = args.variants.split(",") if args.variants else (
        ["ours", "sdpa_cudnn", "sdpa_flash"] if device == "cuda" else ["ours", "sdpa"]
    )
    torch.manual_seed(0)
    reference_model = Model(args.vocab, args.d_model, args.heads, args.layers, None).to(device=device, dtype=dtype)
    initial = {key: value.clone() for key, value in reference_model.state_dict().items()}
    del reference_model
    tokens = torch.randint(0, args.vocab, (args.batch, args.seqlen + 1), device=device)
    inputs, labels = tokens[:, :-1], tokens[:, 1:]

    runs = {}
    for name in names:
        model = Model(args.vocab, args.d_model, args.heads, args.layers, attention_function(name)).to(device=device, dtype=dtype)
        model.load_state_dict(initial)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
        runnable = torch.compile(model) if args.compile else model

        def step(runnable=runnable, optimizer=optimizer):
            logits = runnable(inputs)
            loss = F.cross_entropy(logits.float().view(-1, args.vocab), labels.reshape(-1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss

        try:
            first_loss = step().item()
            for _ in range(args.warmup - 1):
                step()
        except Exception as error:  # noqa: BLE001 - a backend this GPU/torch lacks is reported, not fatal
            print(f"{name}: unavailable ({type(error).__name__}: {str(error).splitlines()[0][:160]})")
            continue
        runs[name] = dict(step=step, model=model, first_loss=first_loss, step_ms=[], attention_ms=[])

    # The attention alone, forward + backward, on one layer's shapes.
    head_dim = args.d_model // args.heads
    q, k, v = (
        torch.randn(args.batch, args.seqlen, args.heads, head_dim, device=device, dtype=dtype, requires_grad=True)
        for _ in range(3)
    )
    dout = torch.randn(args.batch, args.seqlen, args.heads, head_dim, device=device, dtype=dtype)

    for _ in range(args.steps):
        for name, run in runs.items():
            with Timer(device) as timer:
                run["step"]()
            run["step_ms"].append(timer.ms)
            attention = attention_function(name)
            with Timer(device) as timer:
                out = attention(q, k, v)
                torch.autograd.grad(out, (q, k, v), dout)
            run["attention_ms"].append(timer.ms * args.layers)

    results = {}
    for name, run in runs.items():
        step_ms = statistics.median(run["step_ms"])
        attention_ms = statistics.median(run["attention_ms"])
        results[name] = {
            "step_ms": step_ms,
            "attention_ms_per_step": attention_ms,
            "attention_share": attention_ms / step_ms,
            "first_loss": run["first_loss"],
            "step_ms_all": run["step_ms"],
        }
    label = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(
        f"{label}, {dtype}, {args.layers} layers, d_model {args.d_model}, {args.heads} heads, seq {args.seqlen}, "
        f"batch {args.batch}, compile {args.compile}, {args.steps} steps"
    )
    print(f"{'variant':<12}{'step ms':>10}{'attention ms':>14}{'share':>8}{'first loss':>12}")
    for name, result in results.items():
        print(
            f"{name:<12}{result['step_ms']:>10.2f}{result['attention_ms_per_step']:>14.2f}"
            f"{result['attention_share']:>8.1%}{result['first_loss']:>12.4f}"
        )
    os.makedirs(args.out, exist_ok=True)
    record = {
        "benchmark": "training_step",
        "device": label,
        "torch": torch.__version__,
        "library": fas.library_version(),
        "config": {key: getattr(args, key) for key in ("dtype", "layers", "d_model", "heads", "seqlen", "batch", "vocab", "steps", "warmup", "compile")},
        "results": results,
    }
    path = os.path.join(args.out, "training_step.json")
    with open(path, "w") as file:
        json.dump(record, file, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
