#!/usr/bin/env bash
# Device call of run 10: d = 64 tile sweep and d = 256 spread (the table's variant measured first and last).
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
python3 run.py --plan plan10.json --out "$OUT/run10.json" 2>&1 | tee "$OUT/run10.log" | grep -E "FAIL|BENCH|error|Error" | cut -c1-400
grep -c "^OK" "$OUT/run10.log"
