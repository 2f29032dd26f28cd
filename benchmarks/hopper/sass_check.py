#!/usr/bin/env python3
"""Compiles every Hopper forward variant (the tile table of HopperTileTable.swift) for sm_90a with
NVRTC and reads its SASS with cuobjdump: HGMMA (wgmma) and UTMALDG (TMA loads) must be there,
LDL/STL (local memory, spills) must not, nor ptxas's C7514–C7517 notes (wgmma serialized
because ordinary instructions touch accumulators while a wgmma is in flight). No GPU needed.

    python3 benchmarks/hopper/sass_check.py [--json OUT]
"""
import argparse, glob, json, os, re, site, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvrtc_build as nb

# Mirror of HopperTileTable.swift: (d, dv, masked, persistent) -> (block_n, stages, pingpong, overlap, q_stages)
TABLE = {
    (64, 64, False, False): (176, 3, 0, 1, 2), (64, 64, False, True): (128, 3, 0, 1, 2),
    (64, 64, True, False): (128, 3, 1, 1, 2), (64, 64, True, True): (128, 3, 1, 1, 2),
    (96, 96, False, False): (128, 2, 0, 1, 1), (96, 96, True, False): (128, 2, 0, 1, 1),
    (128, 128, False, False): (176, 2, 0, 1, 1), (128, 128, False, True): (128, 2, 0, 1, 2),
    (128, 128, True, False): (128, 2, 1, 1, 2),
    (192, 128, False, False): (96, 2, 0, 1, 1), (192, 128, True, False): (96, 2, 0, 1, 1),
    (256, 256, False, False): (64, 2, 0, 1, 1), (256, 256, True, False): (64, 2, 0, 1, 1),
}


def tile(d, dv, masked, persistent, softcap):
    """The table's row plus the consumer warpgroups: d = 64 without softcap, off the persistent
    grid, runs three consumers on BN = 128 (HopperTileTable.swift's first case)."""
    if d == 64 and not persistent and not softcap:
        return (128, 3, 0, 1, 2), 3
    return TABLE[(d, dv, masked, persistent)], 2


def cuobjdump():
    for sp in site.getsitepackages():
        for c in glob.glob(os.path.join(sp, "nvidia/cu13/bin/cuobjdump")):
            return c
    return "cuobjdump"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    a = ap.parse_args()
    rows, bad = [], 0
    for (d, dv, masked, persistent) in TABLE:
        for fp16 in (0, 1):
            for causal, window in ((1, 0), (0, 1)) if masked else ((0, 0),):
                for softcap in (0, 1):
                    (bn, st, pp, ov, qst), consumers = tile(d, dv, masked, persistent, softcap)
                    cfg = dict(head_dim=d, head_dim_v=dv, block_n=bn, stages=st, fp16=fp16, causal=causal,
                               window=window, softcap=softcap, pingpong=pp, overlap=ov, q_stages=qst,
                               consumers=consumers)
                    cubin, log = nb.compile_cubin(cfg)
                    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                        f.write(cubin)
                        f.flush()
                        sass = subprocess.run([cuobjdump(), "-sass", f.name], capture_output=True, text=True).stdout
                    regs = int(re.search(r"Used (\d+) registers", log).group(1))
                    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
                    row = dict(cfg, registers=regs, spill_stores=int(spill.group(1)), spill_loads=int(spill.group(2)),
                               hgmma=len(re.findall(r"\bHGMMA\.", sass)), utmaldg=len(re.findall(r"\bUTMALDG\b", sass)),
                               local=len(re.findall(r"\b(LDL|STL)\b", sass)),
                               setmaxreg=len(re.findall(r"USETMAXREG", sass)),
                               serialized=len(re.findall(r"C751[4-7]", log)))
                    smem = qst * 64 * consumers * ((d + 63) // 64 * 64) * 2 + st * bn * ((d + 63) // 64 * 64 + (dv + 63) // 64 * 64) * 2 + 2048
                    row["smem"] = smem
                    ok = (smem <= 227 * 1024 and row["hgmma"] > 0 and row["utmaldg"] > 0 and row["local"] == 0 and row["spill_stores"] == 0
                          and row["serialized"] == 0)
                    bad += not ok
                    rows.append(row)
                    print(f"{'ok  ' if ok else 'BAD '} d{d}x{dv} {'fp16' if fp16 else 'bf16'} causal={causal} window={window} "
                          f"softcap={softcap} bn{bn} st{st} q{qst} wg{consumers}: {regs} regs, HGMMA {row['hgmma']}, UTMALDG {row['utmaldg']}, "
                          f"LDL/STL {row['local']}, serialized {row['serialized']}, spill {row['spill_stores']}/{row['spill_loads']} B, USETMAXREG {row['setmaxreg']}",
                          flush=True)
    print(f"{len(rows)} variants, {bad} bad")
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
