#!/usr/bin/env bash
# One device call for the features merged in the second session of 2026-12-06, most important
# first, each step under the time left (END_S, default 560 s): verify of the merged binary (the
# dropout problems now run on the GPU), the new GPU suites (Hopper ALiBi, decode loaders), verify
# under the new switches (packed varlen schedule, bulk and cpasync-lines decode loaders), the
# Python CUDA tests of dropout and fp8, then the A/B benchmarks (ALiBi Hopper vs sm80 route and
# dropout against plain flash; varlen padded vs packed; decode loaders), and compute-sanitizer
# memcheck on the new paths. One tarball $OUT/features.tgz plus $OUT/features.log.
# Carry [".devbin-cuda"]: flash-attention.xz, gpu-tests.tar.xz, the wheel, wheels/.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin features 560

CAP=150 step verify 60 "$bin" verify --device cuda --json "$work/verify.json"
fails verify 20
mkdir -p /tmp/gt && tar -xJf .devbin-cuda/gpu-tests.tar.xz -C /tmp/gt
LD_LIBRARY_PATH=/tmp/gt/lib CAP=100 step gpu-tests 30 /tmp/gt/tests --testing-library swift-testing \
  --filter "${TEST_FILTER:-AlibiHopperTests|KVCacheLoaderGPUTests}"
grep -E "✘|↳.*(rel|tol|error)" "$work/gpu-tests.log" | cut -c1-260 | head -n 20 | tee -a "$log"
CAP=40 step verify-varlen-packed 15 "$bin" verify --device cuda --filter varlen --varlen-schedule packed
fails verify-varlen-packed
for loader in bulk cpasync-lines; do
  CAP=30 step "verify-kv-$loader" 10 "$bin" verify --device cuda --filter kv- --decode-loader "$loader"
  fails "verify-kv-$loader"
done
install_package
CAP=60 step pytest-cuda 20 \
  python3 -m pytest python/tests/test_alibi_dropout.py python/tests/test_fp8.py python/tests/test_context_parallel_simulated.py \
  -q -p no:cacheprovider -rfE -k cuda -n 4
grep -E "^(FAILED|ERROR)" "$work/pytest-cuda.log" | cut -c1-200 | head -n 10 | tee -a "$log"
CAP=80 step bench-alibi-dropout 30 "$bin" bench --device cuda --grid custom --dtypes bf16 --head-dims 128 \
  --seqlens 4096,16384 --causal both --impls flash,flash-alibi,flash-alibi-sm80,flash-dropout --dropout 0.1 \
  --passes forward,backward --json "$work/alibi-dropout.json"
CAP=70 step bench-varlen 30 "$bin" bench --device cuda --grid varlen --varlen-schedule padded,packed --json "$work/varlen.json"
CAP=70 step bench-decode 30 "$bin" bench --grid decode --decode-batches 1,4,16,64 --seqlens 8192,32768,131072 \
  --page-sizes 0,16 --decode-loader cpasync,bulk,cpasync-lines --json "$work/decode-loaders.json"
CAP=45 step memcheck-varlen-packed 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter varlen --varlen-schedule packed
CAP=40 step memcheck-kv-bulk 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
  --dtype bfloat16 --filter kv- --decode-loader bulk
for feature in alibi dropout; do
  CAP=35 step "memcheck-$feature" 15 compute-sanitizer --tool memcheck --error-exitcode 9 "$bin" verify --device cuda \
    --dtype bfloat16 --filter "$feature"
done
grep -h "ERROR SUMMARY" "$work"/memcheck-*.log | tee -a "$log"
device_call_end features
