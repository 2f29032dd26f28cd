#!/usr/bin/env bash
# One device call: our benchmark, the PyTorch SDPA peers on the same shapes, and ncu's DRAM
# bytes of one forward, everything written under $OUT (at most 8 files come back).
#
#   scripts/device-bench.sh full    # verify, ours + peers (bf16 grid), scaling, long context, ncu of ours (~6 min)
#   scripts/device-bench.sh peers   # peers + ncu of torch's math and flash forward only   (~6 min)
#
# Our binary is built on the developer machine (no Swift on the device) and carried:
#   swift build -c release --static-swift-stdlib --product flash-attention --scratch-path .build-bench
#   mkdir -p .devbin && strip -o /tmp/fa .build-bench/release/flash-attention && xz -T2 -c /tmp/fa > .devbin/flash-attention-bench.xz
# then run `scripts/device-bench.sh full` on the device with carry [".devbin/flash-attention-bench.xz"]
# (xz keeps the carried tree under the 64 MiB limit).
set -u -o pipefail
mode="${1:-full}"
OUT="${OUT:-$PWD/bench-out}"
mkdir -p "$OUT"
BIN="${FLASH_ATTENTION_BIN:-/tmp/flash-attention-bench}"
if [ -z "${FLASH_ATTENTION_BIN:-}" ] && [ -f .devbin/flash-attention-bench.xz ]; then
  xz -dc .devbin/flash-attention-bench.xz > "$BIN" && chmod +x "$BIN"
fi
export PYTHONUNBUFFERED=1
log="$OUT/device-bench.log"
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

{
  echo "== device-bench $mode, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
} 2>&1 | tee "$log"

if [ "$mode" = "full" ]; then
  if [ ! -x "$BIN" ]; then echo "no binary at $BIN" | tee -a "$log"; exit 2; fi
  # Correctness first: a benchmark of a wrong kernel is worthless.
  timeout 45 "$BIN" verify --device cuda 2>&1 | tail -n 12 | tee -a "$log"
  # Scaling at fixed batch and heads: standard attention grows as N² and runs out of memory.
  "$BIN" bench --device cuda --grid scaling-gpu --dtypes bf16 --causal no --passes forward \
    --json "$OUT/ours-cuda-scaling.json" 2>>"$log" | tee -a "$log" | tail -n 18
  # Long context: one head, 1M tokens; few runs (each forward is over a second).
  "$BIN" bench --device cuda --grid long-gpu --dtypes bf16 --passes forward --reps 3 --warmup 1 \
    --json "$OUT/ours-cuda-long.json" 2>>"$log" | tee -a "$log" | tail -n 6
  # The FlashAttention grid, bf16: ours (flash: every pass; standard: forward) and the peers
  # that matter (cuDNN, FA2) in the same run.
  timeout 110 "$BIN" bench --device cuda --grid flash --dtypes bf16 --impls flash \
    --json "$OUT/ours-cuda.json" 2>>"$log" | tail -n 4
  if [ "${BENCH_STANDARD_GRID:-0}" = 1 ]; then
    "$BIN" bench --device cuda --grid flash --dtypes bf16 --head-dims 128 --impls standard --passes forward \
      --json "$OUT/ours-cuda-standard.json" 2>>"$log" | tail -n 4
  fi
  python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
    --impls cudnn,flash --deadline-s 50 --json "$OUT/torch-cuda.json" 2>>"$log" | tail -n 2
  echo "== grid done at $(elapsed) s" | tee -a "$log"
  python3 benchmarks/ncu_dram.py --impls flash,standard --seqlens 1024,16384 \
    --binary "$BIN" --json "$OUT/ncu-dram-ours.json" 2>&1 | tee -a "$log"
else
  python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16,fp16 \
    --deadline-s 300 --json "$OUT/torch-cuda.json" 2>>"$log" | tail -n 30
  echo "== peers done at $(elapsed) s" | tee -a "$log"
  python3 benchmarks/ncu_dram.py --impls torch-math,torch-flash \
    --json "$OUT/ncu-dram-torch.json" 2>&1 | tee -a "$log"
fi
echo "== device-bench $mode done in $(elapsed) s" | tee -a "$log"
