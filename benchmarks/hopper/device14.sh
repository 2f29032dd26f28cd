#!/usr/bin/env bash
# Device call of run 14: three consumer warpgroups (BM = 192, FA_CONSUMERS = 3; measured as
# benchmarks/hopper/hopper_forward_wg3.cu, now the shipped kernel with comments changed) at d = 64
# against the table's tiles, N 512-16k, causal and not (plan14.json).
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
python3 run.py --plan plan14.json --out "$OUT/run14.json" 2>&1 | tee "$OUT/run14.log" | grep -E "FAIL|BENCH|error|Error|WATCHDOG" | cut -c1-400
grep -c "^OK" "$OUT/run14.log"
