#!/usr/bin/env bash
# Device call of run 13: ncu on d = 64, N = 16k (the table's variant and the same with 2 of 8
# exponentials on the FMA pipe): pipe utilization (tensor, XU/MUFU, FMA) and stall reasons, to
# see what limits d = 64 if not the MUFU (run 12); the same at N = 2k on the persistent grid.
# Then plan13.json: the persistent-grid threshold (N = 2k-8k, both launches, each timed twice).
set -u -o pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=/usr/local/cuda/lib64
V0='{"head_dim":64,"head_dim_v":64,"block_n":176,"stages":3,"fp16":0,"causal":0,"window":0,"softcap":0,"pingpong":0,"overlap":1,"q_stages":2}'
V2='{"head_dim":64,"head_dim_v":64,"block_n":176,"stages":3,"fp16":0,"causal":0,"window":0,"softcap":0,"pingpong":0,"overlap":1,"q_stages":2,"exp_poly":2,"source":"hopper_forward_exppoly.cu"}'
sec="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats"
met="regex:^(sm__inst_executed_pipe_[a-z_]+\.avg\.pct_of_peak_sustained_active|sm__pipe_[a-z_]+_cycles_active\.avg\.pct_of_peak_sustained_active|smsp__average_warps_issue_stalled_[a-z_]+_per_issue_active\.ratio)$"
VP='{"head_dim":64,"head_dim_v":64,"block_n":128,"stages":3,"fp16":0,"causal":0,"window":0,"softcap":0,"pingpong":0,"overlap":1,"q_stages":2}'
prof() {  # name cfg n persistent
  timeout 100 ncu $sec --print-details all -k flash_fwd_hopper -s 1 -c 1 python3 profile_one.py "$2" $3 0 $4 > "$OUT/ncu-$1.txt" 2>&1 \
    || timeout 100 ncu $sec -k flash_fwd_hopper -s 1 -c 1 python3 profile_one.py "$2" $3 0 $4 > "$OUT/ncu-$1.txt" 2>&1
  timeout 100 ncu --metrics "$met" -k flash_fwd_hopper -s 1 -c 1 python3 profile_one.py "$2" $3 0 $4 > "$OUT/ncu-$1-metrics.txt" 2>&1
  echo "== $1"; grep -E "Duration|Tensor|pipeline|Issue Slots|Eligible|Warp Cycles Per Issued" "$OUT/ncu-$1.txt" | cut -c1-160 | head -12
  grep -E "pct_of_peak|ratio" "$OUT/ncu-$1-metrics.txt" | awk '$NF+0 > 0.05' | cut -c1-120 | head -40
}
prof d64-n16k-e0 "$V0" 16384 0
prof d64-n16k-e2 "$V2" 16384 0
prof d64-n2k-p "$VP" 2048 132
python3 run.py --plan plan13.json --out "$OUT/run13.json" 2>&1 | tee "$OUT/run13.log" | grep -E "FAIL|BENCH|error|Error|WATCHDOG" | cut -c1-400
