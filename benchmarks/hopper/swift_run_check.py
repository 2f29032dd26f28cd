"""The Swift binary's `run` command on shapes with seqlen_k from 1024 up, where the tile table
picks different kernels (three consumers at d = 64, persistent or not) than on the short shapes
of `flash-attention verify`. float16 .npy inputs; O and LSE compared with the float32
reference like run.py's verify (error at most twice that of same-precision standard attention).

python3 swift_run_check.py BIN WORKDIR
"""
import json, os, subprocess, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as hz

binary, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
# (b, sq, sk, hq, hkv, d, causal, window)
cases = [(1, 4500, 4500, 4, 2, 64, False, (-1, -1)), (1, 4500, 5000, 4, 4, 64, True, (-1, -1)),
         (1, 5000, 4400, 2, 1, 64, True, (-1, -1)), (2, 4200, 4201, 2, 2, 64, False, (300, 40)),
         (1, 4300, 4300, 4, 2, 128, True, (-1, -1)),
         # persistent grid (seqlen_k <= 4096): three consumers unmasked from 1024 keys, two below and causal
         (2, 2000, 2000, 4, 1, 64, False, (-1, -1)), (1, 1100, 1024, 3, 3, 64, False, (-1, -1)),
         (1, 700, 1000, 2, 2, 64, False, (-1, -1)), (1, 2000, 2000, 2, 1, 64, True, (-1, -1))]
bad = 0
for b, sq, sk, hq, hkv, d, causal, window in cases:
    q = torch.randn(b, sq, hq, d, device="cuda", dtype=torch.float16)
    k = torch.randn(b, sk, hkv, d, device="cuda", dtype=torch.float16)
    v = torch.randn(b, sk, hkv, d, device="cuda", dtype=torch.float16)
    paths = {n: os.path.join(work, n + ".npy") for n in ("q", "k", "v", "o", "lse")}
    for n, t in (("q", q), ("k", k), ("v", v)):
        np.save(paths[n], t.cpu().numpy())
    cmd = [binary, "run", "--device", "cuda", "--q", paths["q"], "--k", paths["k"], "--v", paths["v"],
           "--out", paths["o"], "--lse", paths["lse"]]
    if causal:
        cmd.append("--causal")
    if window != (-1, -1):
        cmd += ["--window-left", str(window[0]), "--window-right", str(window[1])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    case = dict(b=b, sq=sq, sk=sk, hq=hq, hkv=hkv, d=d, causal=causal, window=window)
    if r.returncode != 0:
        print("FAIL", json.dumps(case), "exit", r.returncode, r.stderr[-400:], flush=True)
        bad += 1
        continue
    o = torch.from_numpy(np.load(paths["o"])).cuda()
    lse = torch.from_numpy(np.load(paths["lse"])).cuda()
    ref_o, ref_lse = hz.reference(q, k, v, causal, window, 0.0)
    lp = hz.lowp_reference(q, k, v, causal, window, 0.0)
    err, err_lp = hz.rel(o, ref_o), hz.rel(lp, ref_o)
    fin = torch.isfinite(ref_lse)
    lse_err = (lse[fin] - ref_lse[fin]).abs().max().item()
    lse_inf_ok = bool((lse[~fin] == float("-inf")).all().item()) if (~fin).any() else True
    ok = not torch.isnan(o).any().item() and err <= max(2 * err_lp, 1e-4) and lse_err < 1e-2 and lse_inf_ok
    bad += not ok
    print("OK  " if ok else "FAIL", json.dumps(case), f"err={err:.2e} lowp={err_lp:.2e} lse={lse_err:.1e}", flush=True)
print(f"{len(cases) - bad}/{len(cases)} passed")
sys.exit(1 if bad else 0)
