#!/usr/bin/env bash
# Two device calls that produce every GPU number in docs/benchmarks/, written under $OUT
# (each call stays under 8 files and about 8 minutes):
#
#   scripts/device-bench.sh ours    # verify, our flash grid (bf16: every pass; fp16: forward,
#                                   # backward), scaling with our standard attention (N^2 memory,
#                                   # out-of-memory point), 1M-token long context
#   scripts/device-bench.sh peers   # PyTorch SDPA cuDNN + flash (FA2) on the same grid, bf16 and
#                                   # fp16; torch math forward; ncu DRAM bytes of ours and torch's
#
# Build the static binary here first (no Swift on the device): scripts/build-static.sh, which
# writes .devbin-cuda/flash-attention.xz; carry [".devbin-cuda"] (or set FLASH_ATTENTION_BIN_XZ
# to another carried file). Then: benchmarks/plot.py --gpu <the JSON files> --ncu <ncu files>.
set -u -o pipefail
mode="${1:-ours}"
OUT="${OUT:-$PWD/bench-out}"
mkdir -p "$OUT"
BIN=/tmp/flash-attention-bench
xz -dc "${FLASH_ATTENTION_BIN_XZ:-.devbin-cuda/flash-attention.xz}" > "$BIN" 2>/dev/null && chmod +x "$BIN"
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache
log="$OUT/device-bench-$mode.log"
started=$(date +%s)
step() { echo "== $1 at $(( $(date +%s) - started )) s" | tee -a "$log"; }
{
  echo "== device-bench $mode, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
} 2>&1 | tee "$log"

if [ "$mode" = "ours" ]; then
  if [ ! -x "$BIN" ]; then echo "no binary (see the header)" | tee -a "$log"; exit 2; fi
  # Correctness first: a benchmark of a wrong kernel is worthless.
  timeout 150 "$BIN" verify --device cuda > "$OUT/verify.log" 2>&1
  echo "verify exit $?: $(tail -n 1 "$OUT/verify.log")" | tee -a "$log"
  grep FAIL "$OUT/verify.log" | head -n 5 | tee -a "$log"
  step "verify done"
  "$BIN" bench --device cuda --grid flash --dtypes bf16 --impls flash --quiet \
    --json "$OUT/ours-cuda-bf16.json" >> "$log" 2>&1
  step "bf16 grid done"
  "$BIN" bench --device cuda --grid flash --dtypes fp16 --impls flash --passes forward,backward --quiet \
    --json "$OUT/ours-cuda-fp16.json" >> "$log" 2>&1
  step "fp16 grid done"
  # Scaling at fixed batch and heads: standard attention grows as N^2 and runs out of memory.
  "$BIN" bench --device cuda --grid scaling-gpu --dtypes bf16 --causal no --passes forward,backward \
    --impls flash,standard --reps 10 --quiet --json "$OUT/ours-cuda-scaling.json" >> "$log" 2>&1
  step "scaling done"
  # Long context: one head, 1M tokens; few runs (each forward takes over a second).
  "$BIN" bench --device cuda --grid long-gpu --dtypes bf16 --passes forward --reps 3 --warmup 1 --quiet \
    --json "$OUT/ours-cuda-long.json" >> "$log" 2>&1
  step "long context done"
else
  python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16,fp16 --impls cudnn,flash \
    --deadline-s 240 --quiet --json "$OUT/torch-cuda.json" >> "$log" 2>&1
  step "cudnn + flash done"
  python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --head-dims 128 --causal no \
    --impls math --passes forward --deadline-s 60 --quiet --json "$OUT/torch-cuda-math.json" >> "$log" 2>&1
  step "math done"
  if [ -x "$BIN" ]; then
    python3 benchmarks/ncu_dram.py --impls flash,standard --seqlens 1024,16384 --binary "$BIN" \
      --json "$OUT/ncu-dram-ours.json" >> "$log" 2>&1
  fi
  python3 benchmarks/ncu_dram.py --impls torch-math,torch-flash --json "$OUT/ncu-dram-torch.json" >> "$log" 2>&1
  step "ncu done"
fi
step "device-bench $mode finished"
