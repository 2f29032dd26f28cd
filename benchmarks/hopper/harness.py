"""Device harness for the Hopper forward kernel: compile (NVRTC), verify against a float32 torch
reference, and time next to cuDNN and FlashAttention-2 (PyTorch SDPA) in the same process.

Usage on the device: python3 benchmarks/hopper/harness.py --out $OUT/result.json [--quick]
"""
import argparse, ctypes, json, math, os, sys, time
import torch
import nvrtc_build as nb

# Let torch create and make current the primary context that the driver calls below use.
torch.zeros(1, device="cuda")
torch.cuda.synchronize()
from cuda_driver import cu, ck, load_function, tensor_map  # noqa: E402


class Kernel:
    def __init__(self, cfg):
        self.cfg = dict(cfg)
        t = time.time()
        self.cubin, self.log = nb.compile_cubin(cfg)
        self.compile_s = time.time() - t
        dp = (cfg["head_dim"] + 63) // 64 * 64
        dvp = (cfg["head_dim_v"] + 63) // 64 * 64
        bn, st = cfg["block_n"], cfg["stages"]
        # "consumers": consumer warpgroups of 64 query rows (2 unless a variant says 3).
        self.bm = 64 * cfg.get("consumers", 2)
        self.smem = cfg.get("q_stages", 1) * self.bm * dp * 2 + st * bn * (dp + dvp) * 2 + 2048
        self.mod, self.fn = load_function(self.cubin, "flash_fwd_hopper", self.smem)
        regs = ctypes.c_int()
        cu.cuFuncGetAttribute(ctypes.byref(regs), 4, self.fn)
        self.regs = regs.value

    def prepare(self, q, k, v, o, lse, causal=False, window=(-1, -1), softcap=0.0, scale=None, persistent=0):
        b, sq, hq, d = q.shape
        sk, hkv = k.shape[1], k.shape[2]
        scale = scale if scale is not None else 1.0 / math.sqrt(d)
        l2e = 1.4426950408889634
        m_blocks = (sq + self.bm - 1) // self.bm
        num_items = (m_blocks + 1) // 2 * hq * b
        tq, tk, tv = tensor_map(q, self.bm), tensor_map(k, self.cfg["block_n"]), tensor_map(v, self.cfg["block_n"])
        args = [tq, tk, tv,
                ctypes.c_uint64(o.data_ptr()), ctypes.c_uint64(lse.data_ptr()),
                ctypes.c_int(sq), ctypes.c_int(sk), ctypes.c_int(hq), ctypes.c_int(hq // hkv),
                ctypes.c_int(m_blocks), ctypes.c_int(num_items),
                ctypes.c_int64(o.stride(0)), ctypes.c_int64(o.stride(1)), ctypes.c_int64(o.stride(2)),
                ctypes.c_int64(lse.stride(0)), ctypes.c_int64(lse.stride(1)),
                ctypes.c_float(scale * l2e),
                ctypes.c_float(scale / softcap if softcap > 0 else 0.0),
                ctypes.c_float(softcap * l2e),
                ctypes.c_int(window[0]), ctypes.c_int(window[1])]
        ptrs = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
        grid = (min(num_items, persistent) if persistent else num_items, 1, 1)
        keep = (args, ptrs)

        def launch():
            stream = torch.cuda.current_stream().cuda_stream
            ck(cu.cuLaunchKernel(self.fn, grid[0], grid[1], grid[2], 2 * self.bm + 128, 1, 1, self.smem, ctypes.c_void_p(stream), ptrs, None), "launch")
        launch.keep = keep
        return launch


def reference(q, k, v, causal, window, softcap, scale=None):
    """float32 attention on [b, s, h, d] inputs; returns o [b, sq, hq, dv] and lse [b, hq, sq]."""
    b, sq, hq, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    scale = scale if scale is not None else 1.0 / math.sqrt(d)
    g = hq // hkv
    qf = q.float().transpose(1, 2)
    kf = k.float().transpose(1, 2).repeat_interleave(g, dim=1)
    vf = v.float().transpose(1, 2).repeat_interleave(g, dim=1)
    s = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(sq, device=q.device)[:, None]
    j = torch.arange(sk, device=q.device)[None, :]
    off = sk - sq
    vis = torch.ones(sq, sk, dtype=torch.bool, device=q.device)
    left, right = window
    if causal:
        right = 0
    if right >= 0:
        vis &= j <= i + off + right
    if left >= 0:
        vis &= j >= i + off - left
    s = s.masked_fill(~vis, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    o = torch.matmul(p, vf)
    return o.transpose(1, 2), lse


def lowp_reference(q, k, v, causal, window, softcap):
    """Standard attention in the storage precision (scores and P rounded), for the error yardstick."""
    b, sq, hq, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    g = hq // hkv
    dt = q.dtype
    qh = q.transpose(1, 2)
    kh = k.transpose(1, 2).repeat_interleave(g, dim=1)
    vh = v.transpose(1, 2).repeat_interleave(g, dim=1)
    s = (torch.matmul(qh, kh.transpose(-1, -2)) * (1.0 / math.sqrt(d))).float()
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(sq, device=q.device)[:, None]
    j = torch.arange(sk, device=q.device)[None, :]
    off = sk - sq
    vis = torch.ones(sq, sk, dtype=torch.bool, device=q.device)
    left, right = window
    if causal:
        right = 0
    if right >= 0:
        vis &= j <= i + off + right
    if left >= 0:
        vis &= j >= i + off - left
    s = s.masked_fill(~vis, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0).to(dt)
    return torch.matmul(p, vh).transpose(1, 2)


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def verify_case(kern, b, sq, sk, hq, hkv, causal=False, window=(-1, -1), softcap=0.0, persistent=0, amp=1.0,
                o_misaligned=False):
    cfg = kern.cfg
    dt = torch.float16 if cfg["fp16"] else torch.bfloat16
    d, dv = cfg["head_dim"], cfg["head_dim_v"]
    # amp > 1 spreads the scores (std ~amp), so row maxima keep jumping from tile to tile and the
    # kernel's O-rescale path runs often, not only on the first tiles.
    q = torch.randn(b, sq, hq, d, device="cuda", dtype=dt) * amp
    k = torch.randn(b, sk, hkv, d, device="cuda", dtype=dt)
    v = torch.randn(b, sk, hkv, dv, device="cuda", dtype=dt)
    if o_misaligned:
        # Output rows 4 bytes off a 16-byte boundary: the kernel must take its 4-byte store path.
        o = torch.full((b * sq * hq * dv + 2,), float("nan"), device="cuda", dtype=dt)[2:].view(b, sq, hq, dv)
    else:
        o = torch.full((b, sq, hq, dv), float("nan"), device="cuda", dtype=dt)
    lse = torch.full((b, hq, sq), float("nan"), device="cuda", dtype=torch.float32)
    run = kern.prepare(q, k, v, o, lse, causal, window, softcap, persistent=persistent)
    run()
    torch.cuda.synchronize()
    ref_o, ref_lse = reference(q, k, v, causal, window, softcap)
    lp = lowp_reference(q, k, v, causal, window, softcap)
    err = rel(o, ref_o)
    err_lp = rel(lp, ref_o)
    nan_o = int(torch.isnan(o).sum().item())
    fin = torch.isfinite(ref_lse)
    lse_err = (lse[fin] - ref_lse[fin]).abs().max().item() if fin.any() else 0.0
    lse_inf_ok = bool((lse[~fin] == float("-inf")).all().item()) if (~fin).any() else True
    ok = nan_o == 0 and err <= max(2 * err_lp, 1e-4) and lse_err < 1e-2 and lse_inf_ok and not math.isnan(err)
    return dict(b=b, sq=sq, sk=sk, hq=hq, hkv=hkv, causal=causal, window=list(window), softcap=softcap, amp=amp, o_misaligned=o_misaligned,
                err=err, err_lowp=err_lp, lse_err=lse_err, nan=nan_o, ok=ok)


def bench_peers_and_ours(kerns, d, n, causal, dt=torch.bfloat16):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    import triton.testing as tt
    b = max(1, 16384 // n)
    h = 2048 // d
    q = torch.randn(b, n, h, d, device="cuda", dtype=dt)
    k = torch.randn(b, n, h, d, device="cuda", dtype=dt)
    v = torch.randn(b, n, h, d, device="cuda", dtype=dt)
    flops = 4 * b * h * n * n * d / (2 if causal else 1)
    res = dict(d=d, n=n, b=b, h=h, causal=causal)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    peers(res, qt, kt, vt, causal, flops, "")
    ours(res, kerns, q, k, v, b, n, h, d, dt, causal, flops)
    peers(res, qt, kt, vt, causal, flops, "_again")
    return res


def peers(res, qt, kt, vt, causal, flops, suffix):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    import triton.testing as tt
    for name, be in (("cudnn" + suffix, SDPBackend.CUDNN_ATTENTION), ("fa2" + suffix, SDPBackend.FLASH_ATTENTION)):
        try:
            with sdpa_kernel(be):
                f = lambda: torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                f()
                ms = tt.do_bench(f, warmup=25, rep=100, return_mode="median")
            res[name] = flops / ms / 1e9
        except Exception as e:  # noqa: BLE001
            res[name] = None
            res[name + "_error"] = str(e)[:200]


def ours(res, kerns, q, k, v, b, n, h, d, dt, causal, flops):
    import triton.testing as tt
    for label, kern in kerns:
        o = torch.empty(b, n, h, d, device="cuda", dtype=dt)
        lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
        persistent = torch.cuda.get_device_properties(0).multi_processor_count if label.endswith("@p") else 0
        run = kern.prepare(q, k, v, o, lse, causal, persistent=persistent)
        run()
        ms = tt.do_bench(run, warmup=25, rep=100, return_mode="median")
        res[label] = flops / ms / 1e9
