#!/usr/bin/env bash
# One device call for context parallelism (issue #20), on whatever GPUs the machine has:
#   1. the CUDA context-parallel tests: the simulated ring (W = 2, 4 ranks' blocks in one process,
#      bf16, both layouts, causal and not) and the distributed ring on one NCCL rank; with 2+ GPUs
#      also the NCCL ring over 2, 4, 8 ranks (as many as there are GPUs);
#   2. python/benchmarks/context_parallel.py: the simulated ring checked against float64 attention
#      and timed against one call on the whole sequence (bf16, d 128, causal, W = 2, 4, 8);
#   3. with 2+ GPUs: the weak-scaling table (torchrun, tokens per GPU fixed, zigzag, causal, bf16,
#      d 128) for 2, 4, 8 GPUs, as many as there are.
# Needs python3 with torch and pytest, and the library: FLASH_ATTENTION_LIBRARY=path/to/
# libflashattention.so (built here with scripts/build-wheel.sh or `swift build -c release
# --product flashattention -Xswiftc -static-stdlib`, carried). Logs and JSON go to $OUT.
#   scripts/device-context-parallel.sh [tokens per GPU for the scaling, default 131072]
set -u -o pipefail
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
tokens="${1:-131072}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export FLASH_ATTENTION_CACHE_DIR="${FLASH_ATTENTION_CACHE_DIR:-/tmp/fa-cache}"
log="$OUT/context-parallel.log"
gpus="$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$log"
echo "library: ${FLASH_ATTENTION_LIBRARY:-the one inside the package}; $gpus GPU(s)" | tee -a "$log"

python3 -m pytest python/tests/test_context_parallel_simulated.py python/tests/test_context_parallel_distributed.py \
  python/tests/test_context_parallel_overlap.py -q -p no:cacheprovider -rs -k "cuda or overlap" > "$OUT/cp-pytest.log" 2>&1
echo "pytest (cuda): exit $? $(tail -n 1 "$OUT/cp-pytest.log")" | tee -a "$log"

python3 python/benchmarks/context_parallel.py --json "$OUT/context_parallel.json" > "$OUT/cp-simulated.log" 2>&1
echo "simulated ring: exit $?" | tee -a "$log"
cat "$OUT/cp-simulated.log" >> "$log"

for n in 2 4 8; do
  [ "$n" -le "$gpus" ] || break
  timeout 580 torchrun --standalone --nproc-per-node "$n" python/benchmarks/context_parallel_scaling.py \
    --tokens-per-gpu "$tokens" --json "$OUT/context_parallel_scaling_$n.json" > "$OUT/cp-scaling-$n.log" 2>&1
  echo "weak scaling, $n GPUs: exit $?" | tee -a "$log"
  grep -E "^check|^W=" "$OUT/cp-scaling-$n.log" | tee -a "$log"
done
