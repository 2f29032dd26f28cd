"""One device call: compile variants, verify them, time them next to cuDNN and FA2.

python3 benchmarks/hopper/run.py --plan PLAN.json --out $OUT/result.json
A plan: {"variants": {label: cfg}, "verify": [[label, case-dict], ...], "bench": [[d, n, causal, [labels]], ...]}
Results are written after every step, so a hang or a crash still leaves what was measured.
"""
import argparse, json, os, sys, threading, time, traceback
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as hz

ap = argparse.ArgumentParser()
ap.add_argument("--plan", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
plan = json.load(open(a.plan))
out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
       "cudnn": torch.backends.cudnn.version(), "variants": {}, "verify": [], "bench": []}


def save():
    json.dump(out, open(a.out, "w"), indent=1)


def watchdog(seconds):
    # A deadlocked kernel never returns: dump what we have and leave.
    def fire():
        out["hung"] = out.get("step")
        save()
        print("WATCHDOG: hang at", out.get("step"), flush=True)
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.start()
    return t


torch.manual_seed(int(time.time()))
kerns = {}
for label, cfg in plan["variants"].items():
    try:
        k = hz.Kernel(cfg)
        kerns[label] = k
        out["variants"][label] = dict(cfg=cfg, regs=k.regs, smem=k.smem, compile_s=k.compile_s,
                                      ptxas=[l for l in k.log.splitlines() if "ptxas" in l or "warning" in l.lower()][-6:])
    except Exception as e:  # noqa: BLE001
        out["variants"][label] = dict(cfg=cfg, error=str(e)[-2000:])
    print(label, out["variants"][label].get("regs"), out["variants"][label].get("error", "")[:300], flush=True)
save()

for label, case in plan.get("verify", []):
    if label not in kerns:
        continue
    out["step"] = f"verify {label} {case}"
    wd = watchdog(30)
    try:
        r = hz.verify_case(kerns[label], **case)
    except Exception as e:  # noqa: BLE001
        r = dict(case, error=traceback.format_exc()[-800:], ok=False)
    wd.cancel()
    r["variant"] = label
    out["verify"].append(r)
    print(f"{'OK  ' if r.get('ok') else 'FAIL'} {label:>12} {json.dumps(case)} err={r.get('err', -1):.2e} lowp={r.get('err_lowp', -1):.2e} lse={r.get('lse_err', -1):.1e} nan={r.get('nan')} {r.get('error', '')[-300:]}", flush=True)
    save()

for d, n, causal, labels in plan.get("bench", []):
    out["step"] = f"bench {d} {n} {causal}"
    wd = watchdog(120)
    try:
        r = hz.bench_peers_and_ours([(l, kerns[l.split('@')[0]]) for l in labels if l.split('@')[0] in kerns], d, n, causal)
    except Exception as e:  # noqa: BLE001
        r = dict(d=d, n=n, causal=causal, error=traceback.format_exc()[-800:])
    wd.cancel()
    out["bench"].append(r)
    print("BENCH", json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    save()
out["step"] = "done"
save()
