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
#   benchmarks/cpu-bench.sh ab [R [OUT [NAME]]]
#                                     # a same-window A/B of two builds on the CPU-kernel grid:
#                                     # per round, for each instruction set in CPU_BENCH_ISAS
#                                     # (default "avx512 avx2"), the baseline binary
#                                     # ($FLASH_ATTENTION_BIN_A) then this one, then PyTorch; each
#                                     # side merged best-of-rounds into OUT/NAME-{a,b}-ISA.json and
#                                     # OUT/NAME-torch.json, and the ratios printed
#                                     # (cpu_best_of.py --compare). CPU_BENCH_SEQLENS narrows the
#                                     # grid (e.g. 2048,4096,8192).
#
# Build first: swift build -c release --product flash-attention --scratch-path .build-bench
# PyTorch is measured when it imports (e.g. PYTHONPATH=<pip install --target dir of a CPU wheel>).
set -u -o pipefail
mode="${1:-kernels}"
if [ "$mode" = "rounds" ] || [ "$mode" = "ab" ]; then
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
if [ "$mode" = "ab" ]; then
  mkdir -p "$out/rounds"
  baseline="${FLASH_ATTENTION_BIN_A:?set FLASH_ATTENTION_BIN_A to the baseline binary}"
  name="${4:-cpu-kernels-ab}"
  quick=(--grid cpu-kernels --passes forward,backward --warmup 1 --reps 3 --impls flash)
  if [ -n "${CPU_BENCH_SEQLENS:-}" ]; then quick+=(--seqlens "$CPU_BENCH_SEQLENS"); fi
  isas=(${CPU_BENCH_ISAS:-avx512 avx2})
  for round in $(seq 1 "$rounds"); do
    echo "== round $round, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    for isa in "${isas[@]}"; do
      FLASH_ATTENTION_CPU_ISA="$isa" "$baseline" bench --device cpu "${quick[@]}" --quiet \
        --json "$out/rounds/$name-a-$isa-$round.json" > /dev/null
      FLASH_ATTENTION_CPU_ISA="$isa" "$bin" bench --device cpu "${quick[@]}" --quiet \
        --json "$out/rounds/$name-b-$isa-$round.json" > /dev/null
    done
    torch_or_note "${quick[@]}" --json "$out/rounds/$name-torch-$round.json" > /dev/null
  done
  for isa in "${isas[@]}"; do
    for side in a b; do
      python3 benchmarks/cpu_best_of.py --out "$out/$name-$side-$isa.json" "$out"/rounds/"$name-$side-$isa"-*.json
    done
    python3 benchmarks/cpu_best_of.py --compare "$out/$name-a-$isa.json" "$out/$name-b-$isa.json"
  done
  if ls "$out"/rounds/"$name"-torch-*.json > /dev/null 2>&1; then
    python3 benchmarks/cpu_best_of.py --out "$out/$name-torch.json" "$out"/rounds/"$name"-torch-*.json
    python3 benchmarks/cpu_best_of.py --compare "$out/$name-torch.json" "$out/$name-b-${isas[0]}.json"
  fi
  exit 0
fi
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
