#!/usr/bin/env bash
# Two device calls that produce every GPU number in docs/benchmarks/, written under $OUT
# (each call stays under 8 files and under 8 minutes):
#
#   scripts/device-bench.sh grid    # ours and the peers in ONE call, same shapes: our flash grid
#                                   # (bf16: forward, backward, forward+backward; fp16: forward)
#                                   # and PyTorch SDPA's cuDNN and flash (FA2) backends
#   scripts/device-bench.sh check   # verify, scaling with our standard attention (N^2 memory,
#                                   # out-of-memory point), 1M-token long context, ncu DRAM bytes
#
# Build the static binary here first (no Swift on the device): scripts/build-static.sh, which
# writes .devbin-cuda/flash-attention.xz; carry [".devbin-cuda"] (or set FLASH_ATTENTION_BIN_XZ
# to another carried file). Then: benchmarks/plot.py --gpu <the JSON files> --ncu <ncu files>.
set -u -o pipefail
mode="${1:-grid}"
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

if [ ! -x "$BIN" ]; then echo "no binary (see the header)" | tee -a "$log"; exit 2; fi
if [ "$mode" = "grid" ]; then
  # Most important first; each later step gets what is left of a 560 s budget (a device call
  # ends at 600 s), and torch marks the cases it has no time for as skipped.
  left() { echo $(( 560 - ($(date +%s) - started) )); }
  timeout "$(left)" "$BIN" bench --device cuda --grid flash --dtypes bf16 --impls flash --quiet \
    --json "$OUT/ours-cuda-bf16.json" >> "$log" 2>&1
  step "ours bf16 done"
  timeout "$(left)" python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
    --impls cudnn,flash --passes forward,backward --deadline-s $(( $(left) - 150 )) --quiet \
    --json "$OUT/torch-cuda-bf16.json" >> "$log" 2>&1
  step "torch bf16 done"
  timeout "$(left)" "$BIN" bench --device cuda --grid flash --dtypes fp16 --impls flash --passes forward --quiet \
    --json "$OUT/ours-cuda-fp16.json" >> "$log" 2>&1
  step "ours fp16 done"
  timeout "$(left)" python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes fp16 \
    --impls cudnn,flash --passes forward --deadline-s $(( $(left) - 15 )) --quiet \
    --json "$OUT/torch-cuda-fp16.json" >> "$log" 2>&1
  step "torch fp16 done"
else
  # Correctness first: a benchmark of a wrong kernel is worthless.
  timeout 150 "$BIN" verify --device cuda > "$OUT/verify.log" 2>&1
  echo "verify exit $?: $(tail -n 1 "$OUT/verify.log")" | tee -a "$log"
  grep FAIL "$OUT/verify.log" | head -n 5 | tee -a "$log"
  step "verify done"
  # Scaling at fixed batch and heads: standard attention grows as N^2 and runs out of memory.
  timeout 150 "$BIN" bench --device cuda --grid scaling-gpu --dtypes bf16 --causal no --passes forward,backward \
    --impls flash,standard --reps 5 --warmup 1 --quiet --json "$OUT/ours-cuda-scaling.json" >> "$log" 2>&1
  step "scaling done"
  # Long context: one head, 1M tokens; few runs (each forward takes over a second).
  timeout 60 "$BIN" bench --device cuda --grid long-gpu --dtypes bf16 --passes forward --reps 3 --warmup 1 --quiet \
    --json "$OUT/ours-cuda-long.json" >> "$log" 2>&1
  step "long context done"
  timeout 120 python3 benchmarks/ncu_dram.py --impls flash,standard --seqlens 1024,16384 --binary "$BIN" \
    --json "$OUT/ncu-dram-ours.json" >> "$log" 2>&1
  step "ncu done"
fi
step "device-bench $mode finished"
