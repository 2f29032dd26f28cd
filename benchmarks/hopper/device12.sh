#!/usr/bin/env bash
# Device call of run 12: part of the exponentials as an FMA-pipe polynomial (FA_EXP_POLY),
# d = 64 sweep over N (and d = 96/128 checks) next to cuDNN and FA2; compute-sanitizer on one
# polynomial variant.
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
python3 run.py --plan plan12.json --out "$OUT/run12.json" 2>&1 | tee "$OUT/run12.log" | grep -E "FAIL|BENCH|error|Error|WATCHDOG" | cut -c1-600
grep -c "^OK" "$OUT/run12.log"
