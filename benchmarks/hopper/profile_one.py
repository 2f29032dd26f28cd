"""Launches one variant on one grid shape a few times, for ncu (no timing, no checks).

ncu --set full -k flash_fwd_hopper -c 1 python3 profile_one.py '{"head_dim": 128, ...}' N CAUSAL PERSISTENT
"""
import json, os, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as hz

cfg, n, causal, persistent = json.loads(sys.argv[1]), int(sys.argv[2]), bool(int(sys.argv[3])), int(sys.argv[4])
d = cfg["head_dim"]
b, h = max(1, 16384 // n), 2048 // d
q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
o = torch.empty_like(q)
lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
run = hz.Kernel(cfg).prepare(q, k, v, o, lse, causal, persistent=persistent)
for _ in range(3):
    run()
torch.cuda.synchronize()
