#!/usr/bin/env bash
# One device call for everything a session changed, most important first, each step under the
# time left (END_S, default 540 s): verify of the new binary (every problem, varlen and KV-cache
# cases), PyTorch's cuDNN/flash SDPA on the bf16 grid, the old/new restructure grid (one round
# each, old first), the decode bandwidth grid with PyTorch on the same shapes, the GPU tests, and
# compute-sanitizer memcheck. Extra steps: EXTRA_STEPS="name:command;..." run before the tests.
# Build here: scripts/build-static.sh; scripts/build-gpu-tests.sh; the old binary as in device-ab.sh.
# On the device with carry [".devbin-cuda"]: scripts/device-session.sh
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
new=/tmp/fa-new
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention.xz > "$new" && chmod +x "$new"
[ -f .devbin-cuda/flash-attention-96ddd2c.xz ] && xz -dc .devbin-cuda/flash-attention-96ddd2c.xz > "$old" && chmod +x "$old"
export PYTHONUNBUFFERED=1
log="$OUT/session.log"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader | tee "$log"
end="${END_S:-540}"

# step NAME MIN_SECONDS COMMAND...: runs COMMAND under `timeout` of the time left, if at least
# MIN_SECONDS are left; logs its exit status and the time.
step() {
  local name="$1" need="$2"; shift 2
  local left=$(( end - SECONDS ))
  if [ "$left" -lt "$need" ]; then echo "$name: skipped, ${left}s left" | tee -a "$log"; return; fi
  timeout "$left" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? at ${SECONDS}s: $(tail -n 1 "$OUT/$name.log")" | tee -a "$log"
}

export FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-new
step verify 60 "$new" verify --device cuda --json "$OUT/verify.json"
grep -E "FAIL" "$OUT/verify.log" | head -n 20 | tee -a "$log"
step torch-grid 120 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --impls flash,cudnn \
  --seqlens 1024,4096,16384 --passes forward,backward --json "$OUT/torch.json" --quiet
grid=(kernels --time --seqlens 1024,4096,16384)
if [ -x "$old" ]; then
  FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-old step old-1 90 "$old" "${grid[@]}" --head-dims 64,128,256
fi
step new-1 90 "$new" "${grid[@]}" --head-dims 64,128,256
python3 scripts/ab-summary.py "$OUT" "$OUT/ab-summary.json" > "$OUT/ab-summary.txt" 2>&1
grep -E "d64/128/256" "$OUT/ab-summary.txt" | tee -a "$log"
step decode 60 "$new" bench --grid decode --json "$OUT/decode.json"
step torch-decode 40 python3 benchmarks/peers/torch_sdpa.py --grid decode --json "$OUT/torch-decode.json"
IFS=';' read -ra extra <<< "${EXTRA_STEPS:-}"
for item in "${extra[@]}"; do
  [ -n "$item" ] && step "${item%%:*}" 30 bash -c "${item#*:}"
done
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib step gpu-tests 40 /tmp/gt/tests --testing-library swift-testing \
  --filter "${TEST_FILTER:-StreamTests|GPUAttentionTests|NonFiniteAndLargeScoreTests|KVCacheGPUTests}"
grep -E "✘" "$OUT/gpu-tests.log" | head -n 20 | tee -a "$log"
step memcheck 30 compute-sanitizer --tool memcheck --error-exitcode 9 "$new" verify --device cuda --dtype bfloat16 \
  --filter "${SANITIZE_FILTER:-kv-page}"
grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | tee -a "$log"
