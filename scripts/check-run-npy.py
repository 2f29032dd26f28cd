#!/usr/bin/env python3
"""End-to-end check of `flash-attention run` on .npy files, forward and backward.

Writes fresh random q, k, v, dO (float16; GQA; causal with seqlen_q != seqlen_k) as .npy files,
runs the binary with --device (cuda on the GPU machine, cpu anywhere), and compares O, LSE, dQ,
dK, dV with a float64 reference computed here (PyTorch autograd when importable, else NumPy).
Then feeds it a corrupt .npy and checks the exit code is 2 and no output file appears.
Prints one JSON object; exits 1 on any failure.

    python3 scripts/check-run-npy.py --binary /tmp/flash-attention --device cuda [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def reference(q, k, v, do, causal):
    """float64 attention [b, s, h, d] with GQA and bottom-right causal mask: O, LSE, dQ, dK, dV."""
    b, sq, hq, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    group = hq // hkv
    scale = 1.0 / np.sqrt(d)
    kk = np.repeat(k, group, axis=2)
    vv = np.repeat(v, group, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, kk) * scale
    if causal:
        i = np.arange(sq)[:, None]
        j = np.arange(sk)[None, :]
        s = np.where(j <= i + sk - sq, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    total = e.sum(axis=-1, keepdims=True)
    p = np.where(total > 0, e / np.where(total > 0, total, 1), 0)
    lse = np.where(total[..., 0] > 0, np.log(np.where(total[..., 0] > 0, total[..., 0], 1)) + m[..., 0], -np.inf)
    o = np.einsum("bhqk,bkhd->bqhd", p, vv)
    dp = np.einsum("bqhd,bkhd->bhqk", do, vv)
    row_d = np.einsum("bqhd,bqhd->bhq", do, o)[..., None]
    ds = p * (dp - row_d) * scale
    dq = np.einsum("bhqk,bkhd->bqhd", ds, kk)
    dkk = np.einsum("bhqk,bqhd->bkhd", ds, q)
    dvv = np.einsum("bhqk,bqhd->bkhd", p, do)
    dk = dkk.reshape(b, sk, hkv, group, d).sum(axis=3)
    dv = dvv.reshape(b, sk, hkv, group, -1).sum(axis=3)
    return o, lse, dq, dk, dv


def relative_l2(actual, expected):
    finite = np.isfinite(expected)
    if not np.array_equal(np.isfinite(actual), finite):
        return float("inf")
    num = np.linalg.norm((actual.astype(np.float64) - expected)[finite])
    den = np.linalg.norm(expected[finite])
    return float(num / den) if den > 0 else float(num)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json")
    args = parser.parse_args()

    rng = np.random.default_rng()
    shape_q, shape_kv = (2, 300, 4, 64), (2, 417, 2, 64)
    arrays = {
        "q": rng.standard_normal(shape_q).astype(np.float16),
        "k": rng.standard_normal(shape_kv).astype(np.float16),
        "v": rng.standard_normal(shape_kv).astype(np.float16),
        "do": rng.standard_normal(shape_q).astype(np.float16),
    }
    result = {"device": args.device, "shape_q": shape_q, "shape_kv": shape_kv, "causal": True, "dtype": "float16"}
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        path = {name: os.path.join(folder, name + ".npy") for name in ["q", "k", "v", "do", "o", "lse", "dq", "dk", "dv"]}
        for name, array in arrays.items():
            np.save(path[name], array)
        command = [
            args.binary, "run", "--q", path["q"], "--k", path["k"], "--v", path["v"], "--out", path["o"],
            "--lse", path["lse"], "--dout", path["do"], "--dq", path["dq"], "--dk", path["dk"], "--dv", path["dv"],
            "--causal", "--device", args.device,
        ]
        run = subprocess.run(command, capture_output=True, text=True)
        result["exit"] = run.returncode
        result["stderr"] = run.stderr.strip()[-500:]
        if run.returncode != 0:
            failures.append(f"run exited {run.returncode}")
        else:
            q, k, v, do = (arrays[n].astype(np.float64) for n in ["q", "k", "v", "do"])
            expected = dict(zip(["o", "lse", "dq", "dk", "dv"], reference(q, k, v, do, causal=True)))
            # float16 storage: O and the gradients carry about one float16 rounding (~5e-4).
            limits = {"o": 4e-3, "lse": 1e-5, "dq": 8e-3, "dk": 8e-3, "dv": 8e-3}
            for name, limit in limits.items():
                actual = np.load(path[name])
                want_dtype = np.float32 if name == "lse" else np.float16
                if actual.dtype != want_dtype:
                    failures.append(f"{name} dtype {actual.dtype}")
                error = relative_l2(actual, expected[name])
                result[f"{name}_relative_l2"] = error
                if not error <= limit:
                    failures.append(f"{name} error {error:.2e} > {limit:.0e}")

        # A corrupt input: one line on stderr, exit 2, and no output file created.
        with open(path["k"], "wb") as handle:
            handle.write(b"\x93NUMPY garbage")
        bad_out = os.path.join(folder, "bad-o.npy")
        bad = subprocess.run(
            [args.binary, "run", "--q", path["q"], "--k", path["k"], "--v", path["v"], "--out", bad_out,
             "--device", args.device], capture_output=True, text=True)
        result["corrupt_input_exit"] = bad.returncode
        result["corrupt_input_stderr"] = bad.stderr.strip()[-300:]
        if bad.returncode != 2 or os.path.exists(bad_out):
            failures.append(f"corrupt input: exit {bad.returncode}, output exists {os.path.exists(bad_out)}")

    result["failures"] = failures
    result["passed"] = not failures
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
