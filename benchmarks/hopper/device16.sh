#!/usr/bin/env bash
# Device call of run 16 (the run-14 tile table, not yet run): the Swift binary's forward verify, the 36-point
# grid next to cuDNN and FA2 (plan16.json). Carry .devbin-cuda.
set -u -o pipefail
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64 FLASH_ATTENTION_CACHE_DIR=/tmp/fa-cache
BIN=/tmp/flash-attention
xz -dc .devbin-cuda/flash-attention.xz > $BIN && chmod +x $BIN
$BIN verify --device cuda --forward-only > "$OUT/run16-swift-verify.log" 2>&1
echo "swift verify exit $?: $(tail -n 1 "$OUT/run16-swift-verify.log")"
timeout 90 ncu --metrics gpu__time_duration.sum -k flash_fwd_hopper -c 1 $BIN verify --device cuda --forward-only 2>&1 | grep -E "flash_fwd[a-z_]*" -o | sort | uniq -c
(cd benchmarks/hopper && python3 run.py --plan plan16.json --out "$OUT/run16-grid.json" 2>&1 | tee "$OUT/run16.log" | grep -E "FAIL|error|Error" | cut -c1-300)
grep -c "^OK" "$OUT/run16.log"
python3 benchmarks/hopper/summarize.py "$OUT/run16-grid.json" | tee "$OUT/run16-summary.md"
