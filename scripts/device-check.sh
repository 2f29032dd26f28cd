#!/usr/bin/env bash
# One device call that checks the CUDA backend the same way after every change:
#   1. `flash-attention verify --device cuda` (forward + backward case matrix vs float64) and
#      `scripts/check-run-npy.py` (the `run` subcommand on .npy files, forward + backward),
#   2. our TFLOP/s on the FlashAttention grid (`flash-attention kernels --time`, bf16),
#   3. PyTorch SDPA's flash (FA2) and cuDNN backends on the same shapes, in the same run.
# Build first here: scripts/build-static.sh; then run on the device with carry [".devbin-cuda"]:
#   scripts/device-check.sh [quick|full|sanitize]
# quick: verify + d=64/128/256 at N=4k,16k; full: N=1k..16k; sanitize: compute-sanitizer
# memcheck + racecheck on a small verify matrix. Logs and JSON go to $OUT.
set -u -o pipefail
mode="${1:-quick}"
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
BIN="${FLASH_ATTENTION_BIN:-/tmp/flash-attention}"
if [ ! -x "$BIN" ] && [ -f .devbin-cuda/flash-attention.xz ]; then
  xz -dc .devbin-cuda/flash-attention.xz > "$BIN" && chmod +x "$BIN"
fi
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR="${FLASH_ATTENTION_CACHE_DIR:-/tmp/fa-cache}"
extra=()
[ -n "${VERIFY_FLAGS:-}" ] && extra=($VERIFY_FLAGS)
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader | tee "$OUT/check.log"

if [ "$mode" = "final" ]; then
  # Everything in one call: verify (default kernels, then the FlashAttention-2 forward alone
  # with its table and two alternative tiles), a forward tile sweep of the FA2 kernel, the
  # full grid for ours and PyTorch's flash backend.
  "$BIN" verify --device cuda > "$OUT/verify.log" 2>&1
  echo "verify (default): exit $? $(tail -n 1 "$OUT/verify.log")" | tee -a "$OUT/check.log"
  fa2="--forward-kernel fa2"
  "$BIN" verify --device cuda $fa2 > "$OUT/verify-fa2.log" 2>&1
  echo "verify (fa2 forward): exit $? $(tail -n 1 "$OUT/verify-fa2.log")" | tee -a "$OUT/check.log"
  for tile in 128x64x4 64x64x4; do
    "$BIN" verify --device cuda $fa2 --forward-tile $tile > "$OUT/v.log" 2>&1
    echo "verify (fa2 forward, tile $tile): exit $? $(tail -n 1 "$OUT/v.log")" | tee -a "$OUT/check.log"
    grep FAIL "$OUT/v.log" | head -n 3 | tee -a "$OUT/check.log"
  done
  t="$BIN kernels --time --seqlens 8192 --forward-only $fa2"
  { $t --head-dims 64 --forward-tiles 128x128x8,64x128x4,128x64x4
    $t --head-dims 128 --forward-tiles 128x64x8,64x64x4,128x64x4
    $t --head-dims 256 --forward-tiles 128x64x8,64x64x4; } | grep -v H100 | tee "$OUT/tune.txt"
  "$BIN" kernels --time --seqlens 1024,2048,4096,8192,16384 --forward-only $fa2 | tee "$OUT/ours-fa2-fwd.txt"
  "$BIN" kernels --time --seqlens 1024,2048,4096,8192,16384 | tee "$OUT/ours.txt"
  python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash \
    --seqlens 1024,2048,4096,8192,16384 --passes forward,backward --json "$OUT/torch.json" --quiet \
    > "$OUT/torch.txt" 2>&1
  grep -E "torch-flash" "$OUT/torch.txt" | awk '{print $2, $6, $7, $8, $10}' | tr '\n' ';'
  exit 0
fi

if [ "$mode" = "tune" ]; then
  # Tile sweeps at N=8k (forward per head dim, backward for d <= 128), then verify of the
  # alternative tiles named in TUNE_VERIFY ("FWDTILE:BWDTILE ..."), then a small sanitizer pass.
  "$BIN" verify --device cuda > "$OUT/verify.log" 2>&1
  echo "verify with the tile table: exit $? $(tail -n 1 "$OUT/verify.log")" | tee -a "$OUT/check.log"
  t="$BIN kernels --time --seqlens 8192"
  $t --head-dims 64 --forward-tiles 128x128x8,64x128x4,128x64x4,64x64x4 --forward-only | tee "$OUT/tune.txt"
  $t --head-dims 128 --forward-tiles 128x64x8,64x64x4,128x64x4,64x128x4 --forward-only | tee -a "$OUT/tune.txt"
  $t --head-dims 256 --forward-tiles 128x64x8,64x64x4,64x32x4 --forward-only | tee -a "$OUT/tune.txt"
  $t --head-dims 64,128 --backward-tiles 32x8,32x4 | tee -a "$OUT/tune.txt"
  for pair in ${TUNE_VERIFY:-}; do
    "$BIN" verify --device cuda --forward-tile "${pair%%:*}" --backward-tile "${pair##*:}" \
      > "$OUT/verify-$pair.log" 2>&1
    echo "verify with tiles $pair: exit $? $(tail -n 1 "$OUT/verify-$pair.log")" | tee -a "$OUT/check.log"
  done
  mode=sanitize
fi

if [ "$mode" = "sanitize" ]; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN" verify --device cuda --dtype bfloat16 \
      --filter "${SANITIZE_FILTER:-odd}" "${extra[@]}" > "$OUT/sanitize-$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $? $(grep -E 'ERROR SUMMARY|passed' "$OUT/sanitize-$tool.log" | tr '\n' ' ')" | tee -a "$OUT/check.log"
  done
  exit 0
fi

"$BIN" verify --device cuda --json "$OUT/verify.json" "${extra[@]}" > "$OUT/verify.log" 2>&1
echo "verify exit $?" | tee -a "$OUT/check.log"
grep -E "FAIL|passed|failed" "$OUT/verify.log" | tail -n 30 | tee -a "$OUT/check.log"
# The `run` subcommand end to end: .npy in, forward + backward on the GPU, .npy out, float64
# check; and a corrupt input refused with exit 2.
timeout 60 python3 scripts/check-run-npy.py --binary "$BIN" --device cuda --json "$OUT/run-npy.json" > /dev/null 2>&1
echo "run on .npy files (cuda, forward + backward): exit $?" | tee -a "$OUT/check.log"

seqlens="4096,16384"
[ "$mode" = "full" ] && seqlens="1024,2048,4096,8192,16384"
timeflags=()
[ -n "${FORWARD_ONLY:-}" ] && timeflags=(--forward-only)
passes="forward,backward"
[ -n "${FORWARD_ONLY:-}" ] && passes="forward"
"$BIN" kernels --time --seqlens "$seqlens" "${timeflags[@]}" 2>&1 | tee "$OUT/ours.txt"
python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash,cudnn \
  --seqlens "$seqlens" --passes "$passes" --json "$OUT/torch.json" --quiet 2>&1 | tee "$OUT/torch.txt" | tail -n 40
