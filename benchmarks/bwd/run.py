"""One device call for the sm80 backward: compile variants (the source embedded in the Swift
package, NVRTC), verify each against a float64 torch reference (gradients of fresh random
inputs, NaN-poisoned outputs, error next to the same-precision torch backward), then time them
next to PyTorch SDPA's flash backend (FlashAttention-2) backward on the same tensors.

python3 benchmarks/bwd/run.py --plan PLAN.json --out $OUT/bwd.json
PLAN: {"variants": {label: {"bm":..,"bn":..,"warps":..,"double":..,"unroll":..}},
       "verify": [[label, case], ...], "bench": [[d, n, causal, [labels]], ...]}
A variant's warp grids follow variants.py (the Swift table's rule) unless given.
"""
import argparse, ctypes, json, math, os, sys, threading, time, traceback
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_source as ks  # also puts benchmarks/hopper (nvrtc_build, cuda_driver) on the path
import variants as vs

torch.zeros(1, device="cuda")   # torch makes the primary context current for the driver calls
torch.cuda.synchronize()
from cuda_driver import cu, ck, load_function, tensor_map  # noqa: E402


class Fn:
    def __init__(self, cfg, entry, smem=0):
        self.cubin, self.log, self.regs, self.spill = ks.compile_cubin(cfg, entry, "sm_90a")
        self.mod, self.fn = load_function(self.cubin, entry, smem)
        self.smem = smem

    def launch(self, grid, block, args):
        ptrs = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
        stream = torch.cuda.current_stream().cuda_stream
        ck(cu.cuLaunchKernel(self.fn, grid[0], grid[1], grid[2], block, 1, 1, self.smem, ctypes.c_void_p(stream), ptrs, None), "launch")


class Backward:
    """The three kernels of one configuration for one (d, dv, dtype, masked, softcap)."""
    def __init__(self, cfg):
        self.cfg = cfg
        t = time.time()
        self.pre = Fn(cfg, "flash_backward_preprocess")
        self.kv = Fn(cfg, "flash_backward_kv", ks.smem_bytes(cfg))
        self.conv = Fn(cfg, "flash_backward_convert_dq")
        self.compile_s = time.time() - t

    def prepare(self, q, k, v, o, lse, do, dq, dk, dv, window=(-1, -1), softcap=0.0, scale=None):
        b, sq, hq, d = q.shape
        sk, hkv = k.shape[1], k.shape[2]
        scale = scale if scale is not None else 1.0 / math.sqrt(d)
        lse2 = torch.empty(b, hq, sq, device="cuda", dtype=torch.float32)
        delta = torch.empty_like(lse2)
        acc = torch.empty(ks.accumulator_floats(self.cfg, b, sq, hq), device="cuda", dtype=torch.float32)
        P = lambda t: ctypes.c_uint64(t.data_ptr())
        I = ctypes.c_int64
        st = lambda t: [I(t.stride(0)), I(t.stride(1)), I(t.stride(2))]
        a_pre = [P(o), P(do), P(lse), P(lse2), P(delta), *st(o), *st(do), I(lse.stride(0)), I(lse.stride(1)),
                 ctypes.c_int(sq), ctypes.c_int(hq)]
        a_kv = [P(q), P(k), P(v), P(do), P(lse2), P(delta), P(acc), P(dk), P(dv),
                *st(q), *st(k), *st(v), *st(do), *st(dk), *st(dv),
                ctypes.c_int(sq), ctypes.c_int(sk), ctypes.c_int(hq // hkv), ctypes.c_float(scale),
                ctypes.c_float(softcap), ctypes.c_int(window[0]), ctypes.c_int(window[1]), ctypes.c_int(0)]
        a_conv = [P(acc), P(dq), *st(dq), ctypes.c_int(sq), ctypes.c_int(hq), ctypes.c_float(scale)]
        bn, threads = self.cfg["bn"], self.cfg["warps"] * 32
        pairs = sq * hq * d // 2

        def run():
            acc.zero_()
            self.pre.launch(((sq + 3) // 4, hq, b), 128, a_pre)
            self.kv.launch(((sk + bn - 1) // bn, hkv, b), threads, a_kv)
            self.conv.launch((max(1, min((pairs + 255) // 256, 4096)), b, 1), 256, a_conv)
        run.keep = (a_pre, a_kv, a_conv, lse2, delta, acc)
        return run


class HopperBackward:
    """The wgmma backward (Sources/FlashAttentionCUDA/Hopper/hopper_backward.cu) between the sm80
    module's preprocess and convert kernels (compiled for the [b, sq, hq, d] accumulator)."""
    def __init__(self, cfg):
        import nvrtc_build as nb
        self.cfg = cfg
        t = time.time()
        side = dict(vs.table(cfg["d"], cfg["dv"])["table"], d=cfg["d"], dv=cfg["dv"], bf16=cfg["bf16"],
                    masked=cfg["masked"], softcap=cfg["softcap"], dq_bulk=0)
        self.side = side
        self.pre = Fn(side, "flash_backward_preprocess")
        self.conv = Fn(side, "flash_backward_convert_dq")
        hcfg = dict(kernel="backward", head_dim=cfg["d"], fp16=int(not cfg["bf16"]), causal=0,
                    window=int(cfg["masked"] or cfg.get("force_masked", False)), q_stages=cfg.get("q_stages", 2),
                    extra=cfg.get("extra", {}))
        if cfg.get("source"):   # another version of the kernel under benchmarks/hopper/, to A/B against
            hcfg["source"] = cfg["source"]
        # "split": dQ from its own kernel (hopper_backward_dq.cu), the key/value kernel without it.
        self.split = bool(cfg.get("split"))
        if self.split:
            hcfg["bwd_skip_dq"] = 1
            dq_cfg = dict(kernel="backward_dq", head_dim=cfg["d"], fp16=hcfg["fp16"], causal=0, window=hcfg["window"],
                          dq_block_n=cfg.get("dq_block_n", 32))
            dq_cubin, _ = nb.compile_cubin(dq_cfg)
            self.dq_bn = dq_cfg["dq_block_n"]
            self.dq_smem = 1024 + 2 * 128 * cfg["d"] * 2 + 2 * 2 * self.dq_bn * cfg["d"] * 2 + 8 + 32 * 2
            self.dq_mod, self.dq_fn = load_function(dq_cubin, "flash_bwd_dq_hopper", self.dq_smem)
        cubin, log = nb.compile_cubin(hcfg)
        self.log = log
        d, qst = cfg["d"], hcfg["q_stages"]
        self.bn = 64 if d == 256 else 128
        # Mirrors HopperBackwardKey.sharedMemoryBytes: alignment slack, K/V, Q/dO buffers, dS
        # (and for d = 256 P) buffers, LSE/D rows, barriers.
        self.smem = (1024 + 2 * self.bn * d * 2 + 2 * qst * 64 * d * 2 + 2 * 64 * self.bn * 2 * (2 if d == 256 else 1)
                     + qst * 2 * 64 * 4 + 8 + 32 * qst)
        self.mod, self.fn = load_function(cubin, "flash_bwd_hopper", self.smem)
        regs = ctypes.c_int()
        cu.cuFuncGetAttribute(ctypes.byref(regs), 4, self.fn)
        self.regs = regs.value
        self.spill = sum(int(x) for x in __import__("re").findall(r"(\d+) bytes spill", log))
        self.kv = self
        self.compile_s = time.time() - t

    def prepare(self, q, k, v, o, lse, do, dq, dk, dv, window=(-1, -1), softcap=0.0, scale=None):
        assert softcap == 0.0
        b, sq, hq, d = q.shape
        sk, hkv = k.shape[1], k.shape[2]
        scale = scale if scale is not None else 1.0 / math.sqrt(d)
        lse2 = torch.empty(b, hq, sq, device="cuda", dtype=torch.float32)
        delta = torch.empty_like(lse2)
        acc = torch.empty(0 if self.split else b * sq * hq * d, device="cuda", dtype=torch.float32)
        P = lambda t: ctypes.c_uint64(t.data_ptr())
        I = ctypes.c_int64
        st = lambda t: [I(t.stride(0)), I(t.stride(1)), I(t.stride(2))]
        a_pre = [P(o), P(do), P(lse), P(lse2), P(delta), *st(o), *st(do), I(lse.stride(0)), I(lse.stride(1)),
                 ctypes.c_int(sq), ctypes.c_int(hq)]
        maps = [tensor_map(q, 64), tensor_map(k, self.bn), tensor_map(v, self.bn), tensor_map(do, 64)]
        a_kv = [*maps, P(lse2), P(delta), P(acc), P(dk), P(dv), *st(dk), *st(dv),
                ctypes.c_int(sq), ctypes.c_int(sk), ctypes.c_int(hq), ctypes.c_int(hq // hkv),
                ctypes.c_float(scale), ctypes.c_float(scale * 1.4426950408889634),
                ctypes.c_int(window[0]), ctypes.c_int(window[1])]
        a_conv = [P(acc), P(dq), *st(dq), ctypes.c_int(sq), ctypes.c_int(hq), ctypes.c_float(scale)]
        pairs = sq * hq * d // 2
        kv_ptrs = (ctypes.c_void_p * len(a_kv))(*[ctypes.addressof(a) for a in a_kv])
        if self.split:
            dq_maps = [tensor_map(q, 128), tensor_map(k, self.dq_bn), tensor_map(v, self.dq_bn), tensor_map(do, 128)]
            a_dq = [*dq_maps, P(lse2), P(delta), P(dq), *st(dq), ctypes.c_int(sq), ctypes.c_int(sk), ctypes.c_int(hq),
                    ctypes.c_int(hq // hkv), ctypes.c_float(scale), ctypes.c_float(scale * 1.4426950408889634),
                    ctypes.c_int(window[0]), ctypes.c_int(window[1])]
            dq_ptrs = (ctypes.c_void_p * len(a_dq))(*[ctypes.addressof(a) for a in a_dq])

        def run():
            stream = torch.cuda.current_stream().cuda_stream
            if not self.split:
                acc.zero_()
            self.pre.launch(((sq + 3) // 4, hq, b), 128, a_pre)
            if self.cfg.get("time_only") != "dq":   # time_only: one kernel of the split form (timing runs)
                ck(cu.cuLaunchKernel(self.fn, (sk + self.bn - 1) // self.bn, hkv, b, 384, 1, 1, self.smem, ctypes.c_void_p(stream), kv_ptrs, None), "launch hopper bwd")
            if self.split and self.cfg.get("time_only") != "kv":
                ck(cu.cuLaunchKernel(self.dq_fn, (sq + 127) // 128, hq, b, 384, 1, 1, self.dq_smem, ctypes.c_void_p(stream), dq_ptrs, None), "launch hopper dq")
            else:
                self.conv.launch((max(1, min((pairs + 255) // 256, 4096)), b, 1), 256, a_conv)
        run.keep = (a_pre, a_kv, kv_ptrs, maps, a_conv, lse2, delta, acc) + ((a_dq, dq_ptrs, dq_maps) if self.split else ())
        return run


def visible(sq, sk, window, device):
    i = torch.arange(sq, device=device)[:, None]
    j = torch.arange(sk, device=device)[None, :]
    vis = torch.ones(sq, sk, dtype=torch.bool, device=device)
    left, right = window
    if right >= 0:
        vis &= j <= i + sk - sq + right
    if left >= 0:
        vis &= j >= i + sk - sq - left
    return vis


def attention(q, k, v, window, softcap, scale):
    """[b, s, h, d] in, o [b, sq, hq, dv] and lse [b, hq, sq]; math in q's dtype."""
    g = q.shape[2] // k.shape[2]
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2).repeat_interleave(g, 1), v.transpose(1, 2).repeat_interleave(g, 1)
    s = torch.matmul(qh, kh.transpose(-1, -2)) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    s = s.masked_fill(~visible(q.shape[1], k.shape[1], window, q.device), float("-inf"))
    lse = torch.logsumexp(s.float(), -1)
    p = torch.exp(s.float() - lse[..., None]).nan_to_num(0.0).to(q.dtype)
    return torch.matmul(p, vh).transpose(1, 2), lse


def rel(a, b):
    """Relative L2 error; the absolute L2 error where the reference is all zeros (as the Swift
    verify's ErrorMetrics: e.g. dQ and dK of a single key, whose exact gradients are 0)."""
    ref = b.double().norm()
    diff = (a.double() - b.double()).norm()
    return (diff / ref if ref > 0 else diff).item()


def verify_case(bwd, b, sq, sk, hq, hkv, window=(-1, -1), softcap=0.0):
    cfg = bwd.cfg
    dt = torch.bfloat16 if cfg["bf16"] else torch.float16
    d, dvd = cfg["d"], cfg["dv"]
    scale = 1.0 / math.sqrt(d)
    q = torch.randn(b, sq, hq, d, device="cuda", dtype=dt)
    k = torch.randn(b, sk, hkv, d, device="cuda", dtype=dt)
    v = torch.randn(b, sk, hkv, dvd, device="cuda", dtype=dt)
    do = torch.randn(b, sq, hq, dvd, device="cuda", dtype=dt)
    # float64 reference gradients; O and LSE for our backward come from the float64 forward.
    q64, k64, v64 = (t.double().requires_grad_() for t in (q, k, v))
    o64, lse64 = attention(q64, k64, v64, window, softcap, scale)
    ref = torch.autograd.grad(o64, (q64, k64, v64), do.double())
    # The same-precision standard attention's gradients: the error yardstick.
    ql, kl, vl = (t.clone().requires_grad_() for t in (q, k, v))
    ol, _ = attention(ql, kl, vl, window, softcap, scale)
    low = torch.autograd.grad(ol, (ql, kl, vl), do)
    o = o64.detach().to(dt)
    lse = lse64.detach().float().contiguous()
    dq, dk, dv = (torch.full_like(t, float("nan")) for t in (q, k, v))
    bwd.prepare(q, k, v, o, lse, do, dq, dk, dv, window, softcap, scale)()
    torch.cuda.synchronize()
    r = dict(b=b, sq=sq, sk=sk, hq=hq, hkv=hkv, window=list(window), softcap=softcap)
    ok = True
    for name, ours, want, lp in zip(("dq", "dk", "dv"), (dq, dk, dv), ref, low):
        nan = int(torch.isnan(ours).sum().item())
        e, el = rel(ours, want), rel(lp, want)
        r["grad_" + name] = [e, el, nan]
        # An all-zero reference (dQ, dK of a single key) is judged by the absolute error, up to one
        # unit roundoff of the storage dtype, as the Swift verify does.
        limit = (2.0 ** -8 if cfg["bf16"] else 2.0 ** -11) if want.abs().max().item() == 0 else 2 * el + 1e-6
        ok = ok and nan == 0 and not math.isnan(e) and e <= limit
    r["ok"] = ok
    return r


def bench(bwds, d, n, causal, dt=torch.bfloat16):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    import triton.testing as tt
    b, h = max(1, 16384 // n), 2048 // d
    flops = 2.5 * 4 * b * h * n * n * d / (2 if causal else 1)
    q, k, v, do = (torch.randn(b, n, h, d, device="cuda", dtype=dt) for _ in range(4))
    res = dict(d=d, n=n, b=b, h=h, causal=causal)

    def fa2(suffix):
        qt, kt, vt = (t.transpose(1, 2).detach().requires_grad_() for t in (q, k, v))
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
        dot = do.transpose(1, 2)
        f = lambda: torch.autograd.grad(out, (qt, kt, vt), dot, retain_graph=True)
        f()
        res["fa2" + suffix] = flops / tt.do_bench(f, warmup=25, rep=100, return_mode="median") / 1e9

    fa2("")
    o, lse = None, None
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention(qt, kt, vt, 0.0, causal, False)[:2]
    o = o.transpose(1, 2)
    dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
    for label, bwd in bwds:
        run = bwd.prepare(q, k, v, o, lse, do, dq, dk, dv, (-1, 0) if causal else (-1, -1), 0.0)
        run()
        res[label] = flops / tt.do_bench(run, warmup=25, rep=100, return_mode="median") / 1e9
    fa2("_again")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    plan = json.load(open(a.plan))
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "variants": {}, "verify": [], "bench": []}
    save = lambda: json.dump(out, open(a.out, "w"), indent=1)
    torch.manual_seed(int(time.time()))
    cache = {}

    def get(label, d, dv, bf16=True, masked=False, softcap=False):
        key = (label, d, dv, bf16, masked, softcap)
        if key not in cache:
            spec = dict(plan["variants"][label])
            if spec.pop("table", False):   # the Swift key's tile and plan (variants.table)
                base = vs.table(d, dv)["table"]
                if softcap and base["dq_bulk"]:
                    base["unroll"] = 1
            elif spec.get("hopper"):
                base = {}
            else:
                base = vs.cfg(d, dv, spec["bm"], spec["bn"], spec["warps"], spec.get("double", True))
            base.update(spec)
            base.update(d=d, dv=dv, bf16=bf16, masked=masked, softcap=softcap)
            try:
                cache[key] = HopperBackward(base) if base.get("hopper") else Backward(base)
                kv = cache[key].kv
                out["variants"][f"{label} d={d} dv={dv} bf16={int(bf16)} m={int(masked)} c={int(softcap)}"] = dict(cfg=base, regs=kv.regs, spill=kv.spill, smem=kv.smem)
            except Exception as e:  # noqa: BLE001
                cache[key] = None
                out["variants"][f"{label} d={d}"] = dict(cfg=base, error=str(e)[-1500:])
                print("COMPILE FAIL", label, d, dv, str(e)[-800:], flush=True)
        return cache[key]

    for label, case in plan.get("verify", []):
        case = dict(case)
        d, dv = case.pop("d"), case.pop("dv", None)
        dv = dv or d
        bf16 = case.pop("bf16", True)
        window = tuple(case.get("window", (-1, -1)))
        bwd = get(label, d, dv, bf16, window != (-1, -1), case.get("softcap", 0.0) > 0)
        if bwd is None:
            continue
        out["step"] = f"verify {label} {case}"
        timer = threading.Timer(60, lambda: (save(), os._exit(3)))
        timer.start()
        try:
            r = verify_case(bwd, **case)
        except Exception:  # noqa: BLE001
            r = dict(case, ok=False, error=traceback.format_exc()[-800:])
        timer.cancel()
        r.update(variant=label, d=d, dv=dv, bf16=bf16)
        out["verify"].append(r)
        print("OK  " if r["ok"] else "FAIL", label, json.dumps({k: r.get(k) for k in ("d", "dv", "bf16", "b", "sq", "sk", "hq", "hkv", "window", "softcap")}),
              " ".join(f"{n}={r['grad_' + n][0]:.1e}/{r['grad_' + n][1]:.1e}/nan{r['grad_' + n][2]}" for n in ("dq", "dk", "dv") if "grad_" + n in r), r.get("error", ""), flush=True)
        save()

    for d, n, causal, labels in plan.get("bench", []):
        out["step"] = f"bench {d} {n} {causal}"
        timer = threading.Timer(120, lambda: (save(), os._exit(3)))
        timer.start()
        try:
            bw = [(l, get(l, d, d, True, causal, False)) for l in labels]
            r = bench([(l, x) for l, x in bw if x is not None], d, n, causal)
        except Exception:  # noqa: BLE001
            r = dict(d=d, n=n, causal=causal, error=traceback.format_exc()[-800:])
        timer.cancel()
        out["bench"].append(r)
        print("BENCH", json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
        save()
    out["step"] = "done"
    save()


if __name__ == "__main__":
    main()
