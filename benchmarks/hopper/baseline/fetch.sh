#!/usr/bin/env bash
# Recreates the kernel versions that the A/B plans compile next to the current one (they are
# earlier commits of Sources/FlashAttentionCUDA/Hopper/hopper_forward.cu, so they are not kept
# as copies): run before a device call that uses plan6/7/8 or plan12, then carry the tree.
#   hopper_forward_run4.cu, hopper_forward_run5.cu   commit 4aeb5b9 (plans 6 and 7)
#   hopper_forward_run7.cu                            commit a3aabd3 (plan 8)
#   ../hopper_forward_exppoly.cu                      commit a8609d7 + hopper_forward_exppoly.patch
#                                                     (FMA-pipe exponentials, run 12, not shipped)
set -euo pipefail
cd "$(dirname "$0")"
kernel=Sources/FlashAttentionCUDA/Hopper/hopper_forward.cu
git show "4aeb5b9:$kernel" > hopper_forward_run4.cu
cp hopper_forward_run4.cu hopper_forward_run5.cu
git show "a3aabd3:$kernel" > hopper_forward_run7.cu
git show "a8609d7:$kernel" > ../hopper_forward_exppoly.cu
patch --quiet ../hopper_forward_exppoly.cu hopper_forward_exppoly.patch
