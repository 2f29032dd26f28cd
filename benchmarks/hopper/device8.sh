#!/usr/bin/env bash
# Device call of run 8: the plan (compile, verify, time vs cuDNN/FA2), then compute-sanitizer.
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
python3 run.py --plan plan8.json --out "$OUT/run8.json" 2>&1 | tee "$OUT/run8.log" | grep -E "FAIL|BENCH|error|Error" | cut -c1-400
grep -c "^OK" "$OUT/run8.log"
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool python3 sanitize.py > "$OUT/sanitize-$tool.log" 2>&1
  echo "$tool exit $?: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|FAIL" "$OUT/sanitize-$tool.log" | tr '\n' ' ')"
done
