#!/usr/bin/env bash
# The shared part of the one-call device scripts (device-validate, -features, -confirm, -last,
# -final): sourced, never run. `device_call_begin NAME DEFAULT_END_S` unpacks the carried static
# binary into $bin, sets $work ($OUT/NAME, packed into $OUT/NAME.tgz by device_call_end: a call
# returns at most 8 files) and $log ($OUT/NAME.log), prints the GPU, and sets the time budget
# $end (END_S overrides the default). Then:
#   step NAME MIN_SECONDS COMMAND...  COMMAND under the time left (or CAP seconds if smaller),
#                                     skipped with less than MIN_SECONDS left; SIGINT first, so
#                                     pytest prints its summary; output in $work/NAME.log
#   fails NAME [LINES]                the FAIL/UNSUPPORTED lines of a step's log, into $log
#   install_package                   the carried wheel (and wheels/*.whl) into /tmp/fas, with
#                                     PYTHONPATH, FLASH_ATTENTION_LIBRARY and one test seed
#                                     (FLASH_ATTENTION_TEST_SEED) exported
#   use_old_binary                    unpacks .devbin-cuda/flash-attention-old.xz into $old
#   alternate NAME CAP MIN ARGS...    `bench ARGS` with the old and the new binary in the order
#                                     old new new old (steps NAME-old-1 .. NAME-old-4, JSON beside)
#   profile NAME REGEX COUNT ARGS...  ncu (full set) of COUNT launches of kernels matching REGEX
#                                     in `bench --device cuda ARGS`: details and per-SASS csv
#   gpu_tests CAP FILTER              the carried test bundle (gpu-tests.tar.xz) on the suites
#                                     matching FILTER: its outcome lines into $log, the log gzipped
#   sanitize TOOL CAP FILTER          compute-sanitizer --tool TOOL on the test bundle's FILTER
#   pytest_cuda                       the Python package's CUDA tests (-n 8) with the time left
#   grid_record                       issue #17's grid (bf16, N 512-16k, d 64/128/256, causal both,
#                                     forward and backward): ours, cuDNN and FA2 through PyTorch,
#                                     ours again, the deterministic backward (ours.json, torch.json,
#                                     ours-again.json, bwd-deterministic.json; scripts/grid-summary.py)
# Carry [".devbin-cuda"]: flash-attention.xz (scripts/build-static.sh), gpu-tests.tar.xz
# (scripts/build-gpu-tests.sh), the wheel (scripts/build-wheel.sh, copied in), wheels/.

device_call_begin() {
  local name="$1"
  OUT="${OUT:-$PWD/device-out}"
  work="$OUT/$name"
  log="$OUT/$name.log"
  bin="/tmp/fa-$name"
  mkdir -p "$work"
  xz -dc .devbin-cuda/flash-attention.xz > "$bin" && chmod +x "$bin"
  export PYTHONUNBUFFERED=1 FLASH_ATTENTION_CACHE_DIR="/tmp/fa-cache-$name"
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader | tee "$log"
  end="${END_S:-$2}"
}

step() {
  local name="$1" need="$2"; shift 2
  local left=$(( end - SECONDS ))
  if [ "$left" -lt "$need" ]; then echo "$name: skipped, ${left}s left" | tee -a "$log"; return; fi
  [ -n "${CAP:-}" ] && [ "$CAP" -lt "$left" ] && left="$CAP"
  timeout -s INT -k 10 "$left" "$@" > "$work/$name.log" 2>&1
  echo "$name: exit $? at ${SECONDS}s: $(tail -n 1 "$work/$name.log" | cut -c1-200)" | tee -a "$log"
}

fails() {
  grep -E "FAIL|UNSUPPORTED|error" "$work/$1.log" 2> /dev/null | cut -c1-200 | head -n "${2:-12}" | tee -a "$log"
}

install_package() {
  local site=/tmp/fas
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .devbin-cuda/*.whl \
    $(ls .devbin-cuda/wheels/*.whl 2> /dev/null) > "$work/pip.log" 2>&1
  export PYTHONPATH="$site"
  FLASH_ATTENTION_LIBRARY="$(ls "$site"/flash_attention_swift/*.so 2> /dev/null | head -n 1)"
  # One seed for every pytest-xdist worker (each would otherwise draw its own), in the log.
  FLASH_ATTENTION_TEST_SEED="${FLASH_ATTENTION_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
  export FLASH_ATTENTION_LIBRARY FLASH_ATTENTION_TEST_SEED
  echo "test seed $FLASH_ATTENTION_TEST_SEED, library $FLASH_ATTENTION_LIBRARY" | tee -a "$log"
}

use_old_binary() {
  old=/tmp/fa-old
  xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
}

alternate() {
  local name="$1" cap="$2" need="$3" n=0 which binary; shift 3
  for which in old new new old; do
    n=$((n + 1)); binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP="$cap" step "$name-$which-$n" "$need" "$binary" bench "$@" --json "$work/$name-$which-$n.json"
  done
}

profile() {
  local name="$1" regex="$2" count="$3"; shift 3
  CAP="${CAP:-90}" step "ncu-$name" 20 ncu --clock-control none --set full --import-source no -k "regex:$regex" \
    --launch-count "$count" -f -o "$work/$name" "$bin" bench --device cuda "$@"
  [ -f "$work/$name.ncu-rep" ] || return 0
  ncu -i "$work/$name.ncu-rep" --page details --print-details all > "$work/$name-details.txt" 2>&1
  ncu -i "$work/$name.ncu-rep" --page source --print-source sass --csv > "$work/$name-sass.csv" 2>&1
  gzip -f "$work/$name-details.txt" "$work/$name-sass.csv"
  echo "$name: details and sass csv written" | tee -a "$log"
  rm -f "$work/$name.ncu-rep"
}

unpack_gpu_tests() {
  [ -x /tmp/gt/tests ] || { mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt; }
}

gpu_tests() {
  local cap="$1" filter="$2"
  unpack_gpu_tests
  CAP="$cap" step gpu-tests 30 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests --testing-library swift-testing --filter "$filter"
  grep -E "✘|passed after|failed after" "$work/gpu-tests.log" | grep -vE "Test case passing" | tail -n 14 | cut -c1-220 | tee -a "$log"
  gzip -f "$work/gpu-tests.log"
}

sanitize() {
  local tool="$1" cap="$2" filter="$3"
  unpack_gpu_tests
  CAP="$cap" step "$tool" 10 compute-sanitizer --tool "$tool" --print-limit 5 env LD_LIBRARY_PATH=/tmp/gt/lib /tmp/gt/tests \
    --testing-library swift-testing --filter "$filter"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed after|failed after" "$work/$tool.log" | tail -n 3 | cut -c1-200 | tee -a "$log"
}

pytest_cuda() {
  install_package
  step pytest-cuda 30 python3 -m pytest python/tests -q -p no:cacheprovider -rfE -k cuda -n 8
  grep -E "^(FAILED|ERROR)|passed|failed" "$work/pytest-cuda.log" | cut -c1-220 | tail -n 12 | tee -a "$log"
}

grid_record() {
  local seqlens=512,1024,2048,4096,8192,16384
  local grid=(--device cuda --grid flash --dtypes bf16 --seqlens "$seqlens" --passes forward,backward --impls flash --reps 20)
  CAP=70 step ours 30 "$bin" bench "${grid[@]}" --json "$work/ours.json"
  CAP=120 step torch 40 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 \
    --impls flash,cudnn --seqlens "$seqlens" --passes forward,backward --json "$work/torch.json" --quiet
  CAP=70 step ours-again 30 "$bin" bench "${grid[@]}" --json "$work/ours-again.json"
  CAP=35 step bwd-deterministic 15 "$bin" bench --device cuda --grid flash --dtypes bf16 --seqlens "$seqlens" \
    --passes backward --impls flash --reps 10 --deterministic --json "$work/bwd-deterministic.json"
}

device_call_end() {
  tar -czf "$OUT/$1.tgz" -C "$OUT" "$1" && rm -rf "$work"
}
