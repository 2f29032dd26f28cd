#!/usr/bin/env bash
# One device call that checks the CUDA backend the same way after every change:
#   1. `flash-attention verify --device cuda` (forward + backward case matrix vs float64),
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

if [ "$mode" = "sanitize" ]; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN" verify --device cuda --dtype bfloat16 \
      --filter "${SANITIZE_FILTER:-odd}" "${extra[@]}" 2>&1 | tail -n 8 | tee -a "$OUT/check.log"
  done
  exit 0
fi

"$BIN" verify --device cuda --json "$OUT/verify.json" "${extra[@]}" > "$OUT/verify.log" 2>&1
echo "verify exit $?" | tee -a "$OUT/check.log"
grep -E "FAIL|passed|failed" "$OUT/verify.log" | tail -n 30 | tee -a "$OUT/check.log"

seqlens="4096,16384"
[ "$mode" = "full" ] && seqlens="1024,2048,4096,8192,16384"
timeflags=()
[ -n "${FORWARD_ONLY:-}" ] && timeflags=(--forward-only)
passes="forward,backward"
[ -n "${FORWARD_ONLY:-}" ] && passes="forward"
"$BIN" kernels --time --seqlens "$seqlens" "${timeflags[@]}" 2>&1 | tee "$OUT/ours.txt"
python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash,cudnn \
  --seqlens "$seqlens" --passes "$passes" --json "$OUT/torch.json" --quiet 2>&1 | tee "$OUT/torch.txt" | tail -n 40
