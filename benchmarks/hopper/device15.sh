#!/usr/bin/env bash
# Device call of run 15 (the table with three consumers at d = 64, N > 4096): the Swift binary's
# forward verify, its `run` command on N > 4096 shapes against torch (swift_run_check.py), the
# harness verify of the three-consumer variants (plan15.json) with two timings, and
# compute-sanitizer on one three-consumer case. Carry .devbin-hopper.
set -u -o pipefail
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache
BIN=/tmp/flash-attention
xz -dc .devbin-hopper/flash-attention.xz > $BIN && chmod +x $BIN
$BIN verify --device cuda --forward-only > "$OUT/run15-swift-verify.log" 2>&1
echo "swift verify exit $?: $(tail -n 1 "$OUT/run15-swift-verify.log")"
cd benchmarks/hopper
python3 swift_run_check.py $BIN /tmp/fa-npy 2>&1 | tee "$OUT/run15-swift-run-check.log" | tail -n 7
python3 run.py --plan plan15.json --out "$OUT/run15.json" 2>&1 | tee "$OUT/run15.log" | grep -E "FAIL|BENCH|error|Error|WATCHDOG" | cut -c1-300
echo "harness verify OK: $(grep -c '^OK' "$OUT/run15.log")"
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool python3 sanitize.py 6 > "$OUT/sanitize-$tool-wg3.log" 2>&1
  echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize-$tool-wg3.log" | tail -n 1)"
done
