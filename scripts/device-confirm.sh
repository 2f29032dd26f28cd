#!/usr/bin/env bash
# A device call that confirms a binary whose defaults changed, most important first, each step
# under the time left (END_S, default 520 s): verify of the varlen cases (the packed schedule is
# the default) and memcheck on them and on the KV-cache cases (the line-coalesced decode loader is
# the default), the Python package's CUDA tests, then the full verify. Output: $OUT/confirm.tgz and
# $OUT/confirm.log. Carry [".devbin-cuda"] as for scripts/device-validate.sh.
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
work="$OUT/confirm"
mkdir -p "$work"
bin=/tmp/fa-confirm
xz -dc .devbin-cuda/flash-attention.xz > "$bin" && chmod +x "$bin"
export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache-confirm
log="$OUT/confirm.log"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader | tee "$log"
end="${END_S:-520}"
step() {
  local name="$1" need="$2"; shift 2
  local left=$(( end - SECONDS ))
  if [ "$left" -lt "$need" ]; then echo "$name: skipped, ${left}s left" | tee -a "$log"; return; fi
  [ -n "${CAP:-}" ] && [ "$CAP" -lt "$left" ] && left="$CAP"
  timeout -s INT -k 10 "$left" "$@" > "$work/$name.log" 2>&1
  echo "$name: exit $? at ${SECONDS}s: $(tail -n 1 "$work/$name.log" | cut -c1-200)" | tee -a "$log"
}
fails() { grep -E "FAIL|UNSUPPORTED|error" "$work/$1.log" | cut -c1-200 | head -n "${2:-12}" | tee -a "$log"; }
CAP=170 step verify-varlen 30 "$bin" verify --device cuda --filter varlen --json "$work/verify-varlen.json"
fails verify-varlen
grep -c PASS "$work/verify-varlen.log" | sed 's/^/varlen cases passed so far: /' | tee -a "$log"
CAP=60 step memcheck-kv 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter kv-
CAP=110 step memcheck-varlen 30 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter varlen
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
site=/tmp/fas
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .devbin-cuda/*.whl .devbin-cuda/wheels/*.whl \
  > "$work/pip.log" 2>&1
export FLASH_ATTENTION_TEST_SEED="${FLASH_ATTENTION_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
echo "test seed $FLASH_ATTENTION_TEST_SEED" | tee -a "$log"
PYTHONPATH="$site" FLASH_ATTENTION_LIBRARY="$(ls "$site"/flash_attention_swift/*.so | head -n 1)" CAP=200 step pytest-cuda 60 \
  python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 6
grep -E "^(FAILED|ERROR)" "$work/pytest-cuda.log" | cut -c1-200 | head -n 20 | tee -a "$log"
step verify 30 "$bin" verify --device cuda --json "$work/verify.json"
fails verify 20
grep -c PASS "$work/verify.log" | sed 's/^/verify cases passed: /' | tee -a "$log"
tar -czf "$OUT/confirm.tgz" -C "$OUT" confirm && rm -rf "$work"
