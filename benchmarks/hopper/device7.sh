#!/usr/bin/env bash
# Device call of run 7: the plan (compile, verify, time vs cuDNN/FA2), then ncu on two cases.
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
python3 run.py --plan plan7.json --out "$OUT/run7.json" 2>&1 | tee "$OUT/run7.log" | grep -E "FAIL|BENCH|error|Error" | cut -c1-400
V128='{"head_dim":128,"head_dim_v":128,"block_n":176,"stages":2,"fp16":0,"causal":0,"window":0,"softcap":0,"pingpong":0,"overlap":1}'
V256='{"head_dim":256,"head_dim_v":256,"block_n":64,"stages":2,"fp16":0,"causal":0,"window":0,"softcap":0,"pingpong":0,"overlap":1}'
sec="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy"
timeout 120 ncu $sec -k flash_fwd_hopper -s 1 -c 1 python3 profile_one.py "$V128" 512 0 132 > "$OUT/ncu-d128-n512.txt" 2>&1
timeout 120 ncu $sec -k flash_fwd_hopper -s 1 -c 1 python3 profile_one.py "$V256" 16384 0 0 > "$OUT/ncu-d256-n16k.txt" 2>&1
grep -E "Duration|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Stall|Warp Cycles Per Issued" "$OUT"/ncu-*.txt | cut -c1-200 | head -40
