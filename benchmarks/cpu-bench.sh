#!/usr/bin/env bash
# The CPU benchmark in one command: ours (flash + standard, with the probed FMA peak), the NumPy
# standard attention, and PyTorch's CPU SDPA when torch imports; JSON into docs/benchmarks/
# (or $1), then the figures. Build first:
#   swift build -c release --product flash-attention --scratch-path .build-bench
set -u -o pipefail
out="${1:-docs/benchmarks}"
bin="${FLASH_ATTENTION_BIN:-.build-bench/release/flash-attention}"
mkdir -p "$out"
"$bin" bench --device cpu --grid cpu --json "$out/cpu-ours.json"
"$bin" bench --device cpu --grid scaling-cpu --causal no --passes forward --json "$out/cpu-ours-scaling.json"
"$bin" bench --device cpu --grid long-cpu --passes forward --reps 1 --warmup 0 --json "$out/cpu-ours-long.json"
python3 benchmarks/peers/numpy_standard.py --grid cpu --json "$out/cpu-numpy.json"
python3 benchmarks/peers/numpy_standard.py --grid scaling-cpu --causal no --passes forward --json "$out/cpu-numpy-scaling.json"
python3 benchmarks/peers/torch_sdpa.py --device cpu --grid cpu --json "$out/cpu-torch.json" \
  || echo "PyTorch CPU SDPA not measured (torch is not importable here)"
