"""A few small verification cases, run under compute-sanitizer (memcheck, racecheck).

python3 sanitize.py [INDEX ...]    (all cases, or only those listed)
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as hz

V = lambda d, bn, st, **k: dict(dict(head_dim=d, head_dim_v=d, block_n=bn, stages=st, fp16=0, causal=0, window=0, softcap=0, pingpong=0, overlap=1), **k)
cases = [
    (V(128, 176, 2), dict(b=1, sq=300, sk=200, hq=2, hkv=1, persistent=4)),
    (V(128, 128, 2, causal=1, pingpong=1), dict(b=1, sq=257, sk=300, hq=2, hkv=2, causal=True, persistent=3)),
    (V(64, 128, 3, window=1, softcap=1), dict(b=1, sq=200, sk=130, hq=2, hkv=2, window=(10, 0), softcap=5.0)),
    (V(256, 80, 2, causal=1, overlap=0), dict(b=1, sq=129, sk=129, hq=1, hkv=1, causal=True)),
    (V(128, 128, 2, q_stages=2), dict(b=1, sq=600, sk=300, hq=2, hkv=1, persistent=3)),
    (V(64, 176, 3, q_stages=2), dict(b=2, sq=300, sk=400, hq=2, hkv=2, persistent=2, o_misaligned=True)),
    (V(64, 128, 3, q_stages=2, consumers=3, window=1), dict(b=1, sq=500, sk=450, hq=2, hkv=1, window=(60, 5))),
]
if len(sys.argv) > 1:
    cases = [cases[int(i)] for i in sys.argv[1:]]
bad = 0
for cfg, case in cases:
    r = hz.verify_case(hz.Kernel(cfg), **case)
    print("OK" if r["ok"] else "FAIL", cfg["head_dim"], case, f"err={r['err']:.2e}", flush=True)
    bad += not r["ok"]
sys.exit(1 if bad else 0)
