"""ncu of the Hopper backward kernel, causal and not, on one shape (runs each twice; profile the
second launch of each):

ncu --kernel-name flash_bwd_hopper --launch-skip 1 --launch-count 3 --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats python3 benchmarks/bwd/profile_hopper.py --d 128 --n 4096
"""
import argparse, os, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as harness  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--d", type=int, default=128)
ap.add_argument("--n", type=int, default=4096)
ap.add_argument("--unmasked-only", action="store_true")
a = ap.parse_args()
d, n = a.d, a.n
b, h = max(1, 16384 // n), 2048 // d
q, k, v, do = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
o = torch.randn_like(q)
lse = torch.full((b, h, n), 10.0, device="cuda")
dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
for masked, window in ((False, (-1, -1)),) if a.unmasked_only else ((False, (-1, -1)), (True, (-1, 0))):
    bwd = harness.HopperBackward(dict(d=d, dv=d, bf16=True, masked=masked, softcap=False))
    run = bwd.prepare(q, k, v, o, lse, do, dq, dk, dv, window, 0.0)
    run()
    run()
torch.cuda.synchronize()
print("done")
