"""ncu comparison of our backward key/value kernel and FlashAttention-2's (PyTorch SDPA) on one
shape: runs each once (after a warm-up) so that ncu, started around this script, profiles both.

ncu --kernel-name regex:'flash_backward_kv|flash_bwd_dq_dk_dv' --launch-skip 2 --launch-count 2 \
    --set full python3 benchmarks/bwd/profile.py --d 128 --n 4096 [--causal] [--variant '{...}']
"""
import argparse, json, math, os, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as harness  # noqa: E402
import variants as vs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--d", type=int, default=128)
ap.add_argument("--n", type=int, default=4096)
ap.add_argument("--causal", action="store_true")
ap.add_argument("--variant", default="{}", help="JSON overrides of the table tile, e.g. {\"dq_bulk\": 1}")
a = ap.parse_args()
d, n = a.d, a.n
cfg = vs.table(d, d)["table"]
cfg.update(json.loads(a.variant))
cfg.update(bf16=True, masked=a.causal, softcap=False)
bwd = harness.Backward(cfg)
b, h = max(1, 16384 // n), 2048 // d
q, k, v, do = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
from torch.nn.attention import sdpa_kernel, SDPBackend
qt, kt, vt = (t.transpose(1, 2).detach().requires_grad_() for t in (q, k, v))
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=a.causal)
    o, lse = torch.ops.aten._scaled_dot_product_flash_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), 0.0, a.causal, False)[:2]
dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
ours = bwd.prepare(q, k, v, o.transpose(1, 2), lse, do, dq, dk, dv, (-1, 0) if a.causal else (-1, -1), 0.0)
fa2 = lambda: torch.autograd.grad(out, (qt, kt, vt), do.transpose(1, 2), retain_graph=True)
for _ in range(2):   # warm-up, then the profiled pair (ours, FA2)
    ours()
    fa2()
torch.cuda.synchronize()
print("done", cfg)
