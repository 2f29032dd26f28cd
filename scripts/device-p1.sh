#!/usr/bin/env bash
# First device call of 2026-12-06's fourth session (END_S default 540 s).
#   - fp8 forward (#18): old binary (cf1df36) and new (the V transpose two blocks at a time)
#     alternated, d 128/256, N 8k/16k, bf16 beside them; the new binary under four other fp8
#     tiles (--hopper-forward-tile);
#   - ncu (full set, per-SASS stall sampling) of the fp8 and bf16 forward at d 128, N 8k;
#   - the d 64 causal forward at N 1k-4k (#17) under five tiles, cuDNN beside it;
#   - ALiBi on the causal d 128 tile without ping-pong (#19);
#   - decode (#15): the read floor beside the decode (--decode-read-floor), both flushes, and
#     the decode kernel's own duration under ncu at batch 1-2 x 8k.
# Output: $OUT/p1.tgz and $OUT/p1.log. Carry [".devbin-cuda"] with flash-attention.xz (new) and
# flash-attention-old.xz.
set -u -o pipefail
source "$(dirname "$0")/device-steps.sh"
device_call_begin p1 540
old=/tmp/fa-old
xz -dc .devbin-cuda/flash-attention-old.xz > "$old" && chmod +x "$old"
CAP=60 step verify-fp8 10 "$bin" verify --device cuda --dtype fp8 --forward-only
fails verify-fp8
fp8=(--device cuda --grid flash --head-dims 128,256 --seqlens 8192,16384 --causal no --impls flash --passes forward --reps 20)
n=0
for order in "old new" "new old"; do
  for which in $order; do
    n=$((n + 1)); binary="$bin"; [ "$which" = old ] && binary="$old"
    CAP=60 step "fp8-$which-$n" 20 "$binary" bench "${fp8[@]}" --dtypes fp8,bf16 --json "$work/fp8-$which-$n.json"
  done
done
for tile in 128x3x2+overlap 128x4x2+pingpong+overlap 128x2x2+pingpong+overlap 128x2x1+overlap; do
  CAP=40 step "fp8-tile-$tile" 15 "$bin" bench "${fp8[@]}" --dtypes fp8 --hopper-forward-tile "$tile" \
    --json "$work/fp8-tile-$tile.json"
done
# #17's weak forward corner: d 64 causal N 1k-4k (persistent grid), the table's tile first and
# last, four others between, cuDNN (torch SDPA) in the same call.
d64=(--device cuda --grid flash --head-dims 64 --seqlens 1024,2048,4096 --causal yes --dtypes bf16 --impls flash --passes forward --reps 30)
CAP=40 step d64-default-1 10 "$bin" bench "${d64[@]}" --json "$work/d64-default-1.json"
for tile in 128x3x2+overlap+wg3 128x3x2+overlap 96x4x2+pingpong+overlap 64x4x2+pingpong+overlap; do
  CAP=40 step "d64-tile-$tile" 10 "$bin" bench "${d64[@]}" --hopper-forward-tile "$tile" --json "$work/d64-tile-$tile.json"
done
CAP=40 step d64-default-2 10 "$bin" bench "${d64[@]}" --json "$work/d64-default-2.json"
CAP=60 step d64-torch 20 python3 benchmarks/peers/torch_sdpa.py --device cuda --grid flash --dtypes bf16 --head-dims 64 \
  --seqlens 1024,2048,4096 --causal yes --impls cudnn,flash --passes forward --reps 30 --json "$work/d64-torch.json" --quiet
# #19: ALiBi on the causal d 128 tile without ping-pong (the prediction of features-2026-12-06.md,
# 1.06-1.10x plain ping-pong) against the table's ping-pong tile, plain and ALiBi in each run.
alibi=(--device cuda --grid custom --batch 1 --heads 16 --dtypes bf16 --head-dims 128 --seqlens 4096,16384 --causal yes --impls flash,flash-alibi --passes forward --reps 30)
for round in 1 2; do
  CAP=40 step "alibi-pp-$round" 10 "$bin" bench "${alibi[@]}" --json "$work/alibi-pp-$round.json"
  CAP=40 step "alibi-nopp-$round" 10 "$bin" bench "${alibi[@]}" --hopper-forward-tile 128x2x2+overlap --json "$work/alibi-nopp-$round.json"
done
CAP=90 step decode-floor 20 "$bin" bench --device cuda --grid decode --decode-batches 1,2,4,16 --seqlens 8192,32768,131072 \
  --page-sizes 0,16 --decode-flush clean,dirty --decode-read-floor --json "$work/decode-floor.json"
ncu --version | tail -n 1 | tee -a "$log"
shape=(--grid custom --batch 1 --heads 16 --seqlens 8192 --head-dims 128 --causal no --once --quiet)
profile() {  # NAME KERNEL_REGEX LAUNCHES BENCH_ARGS...
  local name="$1" regex="$2" count="$3"; shift 3
  CAP=90 step "ncu-$name" 20 ncu --clock-control none --set full --import-source no -k "regex:$regex" \
    --launch-count "$count" -f -o "$work/$name" "$bin" bench --device cuda "$@"
  [ -f "$work/$name.ncu-rep" ] || return
  ncu -i "$work/$name.ncu-rep" --page details --print-details all > "$work/$name-details.txt" 2>&1
  ncu -i "$work/$name.ncu-rep" --page source --print-source sass --csv > "$work/$name-sass.csv" 2>&1
  echo "$name: $(wc -c < "$work/$name-details.txt") B details, $(wc -c < "$work/$name-sass.csv") B sass" | tee -a "$log"
  rm -f "$work/$name.ncu-rep"
}
profile fp8-d128 '^flash_fwd_hopper' 1 "${shape[@]}" --dtypes fp8 --impls flash --passes forward
profile bf16-d128 '^flash_fwd_hopper' 1 "${shape[@]}" --dtypes bf16 --impls flash --passes forward
CAP=60 step decode-ncu 15 ncu --clock-control none --cache-control all -k 'regex:^flash_decode' --launch-skip 3 \
  --launch-count 6 --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  "$bin" bench --device cuda --grid decode --decode-batches 1,2 --seqlens 8192 --page-sizes 0 --decode-flush clean \
  --reps 3 --warmup 3
rm -f "$work"/*.ncu-rep.tmp
device_call_end p1
