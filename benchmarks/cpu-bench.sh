#!/usr/bin/env bash
# The CPU benchmark in one command, JSON into docs/benchmarks/ (or $2), then the figures:
#
#   benchmarks/cpu-bench.sh kernels   # the CPU-kernel grid (batch 1, 8 heads, d 64/128, N 1024-16384,
#                                     # causal and not; forward + backward): ours (flash + standard,
#                                     # with the probed FMA peak) and PyTorch's CPU SDPA, ~20 min
#   benchmarks/cpu-bench.sh full      # the throughput grid (batch x N = 4096), scaling to the
#                                     # out-of-memory point, N = 131072 long context, NumPy and torch
#   benchmarks/cpu-bench.sh rounds [R [OUT [NAME]]]
#                                     # the CPU-kernel grid, ours and torch alternated R times
#                                     # (default 3), each side merged best-of-rounds by
#                                     # cpu_best_of.py into OUT/NAME-{ours,torch}.json (default
#                                     # docs/benchmarks/cpu-kernels-rounds), the rounds in
#                                     # OUT/rounds/: for a machine whose cores neighbours share
#
# Build first: swift build -c release --product flash-attention --scratch-path .build-bench
# PyTorch is measured when it imports (e.g. PYTHONPATH=<pip install --target dir of a CPU wheel>).
set -u -o pipefail
mode="${1:-kernels}"
if [ "$mode" = "rounds" ]; then
  rounds="${2:-3}"
  out="${3:-docs/benchmarks}"
else
  out="${2:-docs/benchmarks}"
fi
bin="${FLASH_ATTENTION_BIN:-.build-bench/release/flash-attention}"
mkdir -p "$out"
torch_or_note() {
  python3 benchmarks/peers/torch_sdpa.py --device cpu "$@" \
    || echo "PyTorch CPU SDPA not measured (torch is not importable here)"
}
if [ "$mode" = "rounds" ]; then
  mkdir -p "$out/rounds"
  quick=(--grid cpu-kernels --passes forward,backward --warmup 1 --reps 3 --impls flash)
  name="${4:-cpu-kernels-rounds}"
  for round in $(seq 1 "$rounds"); do
    "$bin" bench --device cpu "${quick[@]}" --json "$out/rounds/$name-ours-$round.json"
    torch_or_note "${quick[@]}" --json "$out/rounds/$name-torch-$round.json"
  done
  python3 benchmarks/cpu_best_of.py --out "$out/$name-ours.json" "$out"/rounds/"$name"-ours-*.json
  if ls "$out"/rounds/"$name"-torch-*.json > /dev/null 2>&1; then
    python3 benchmarks/cpu_best_of.py --out "$out/$name-torch.json" "$out"/rounds/"$name"-torch-*.json
  fi
  exit 0
fi
if [ "$mode" = "kernels" ]; then
  # Flash and torch first and back to back (the comparison), standard attention last (slow).
  quick=(--grid cpu-kernels --passes forward,backward --warmup 1 --reps 3)
  "$bin" bench --device cpu "${quick[@]}" --impls flash --json "$out/cpu-kernels-ours.json"
  torch_or_note "${quick[@]}" --impls flash --json "$out/cpu-kernels-torch.json"
  "$bin" bench --device cpu "${quick[@]}" --impls standard --json "$out/cpu-kernels-ours-standard.json"
  exit 0
fi
"$bin" bench --device cpu --grid cpu --json "$out/cpu-ours.json"
"$bin" bench --device cpu --grid scaling-cpu --causal no --passes forward --json "$out/cpu-ours-scaling.json"
"$bin" bench --device cpu --grid long-cpu --passes forward --reps 1 --warmup 0 --json "$out/cpu-ours-long.json"
python3 benchmarks/peers/numpy_standard.py --grid cpu --json "$out/cpu-numpy.json"
python3 benchmarks/peers/numpy_standard.py --grid scaling-cpu --causal no --passes forward --json "$out/cpu-numpy-scaling.json"
torch_or_note --grid cpu --json "$out/cpu-torch.json"
