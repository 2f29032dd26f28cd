#!/usr/bin/env python3
"""A markdown before/after table of the CUDA kernels (scripts/kernel-report.sh's outputs).

    scripts/kernel-compare.py BEFORE_KERNELS.txt AFTER_KERNELS.txt SASS_DIGEST.txt [BEFORE_DUMP AFTER_DUMP] > table.md

BEFORE/AFTER: `flash-attention kernels --exhaustive --sass` reports of one architecture;
SASS_DIGEST: `scripts/sass-digest.py BEFORE_DUMP AFTER_DUMP` of the same. One row per variant:
registers, shared memory, spills, HGMMA and UTMALDG counts before -> after, the SASS verdict,
and the hot loop's instruction count (see sass-digest.py) where the SASS differs. A summary on
top counts what got better, worse or stayed. With the two dump folders, the family summary also
counts the variants whose hot-loop change is integer, uniform-datapath and control instructions
only (no floating-point, tensor-core, MUFU, memory or synchronization instruction added or removed). For the FlashAttention-2 kernels (labels with
"/Nw", N warps per CTA) the CTAs per SM that registers and shared memory allow, by the CUDA
occupancy rules of the architecture in the label (the Hopper kernels fix their registers per
warpgroup with setmaxnreg and run one CTA per SM).
"""
import re, sys


def report(path: str) -> dict:
    rows = {}
    for line in open(path):
        words = line.split()
        # kernel... regs smem stack spills compile "s" HGMMA UTMALDG LDL/STL
        if len(words) < 10 or not words[-8].isdigit() or words[-4] != "s":
            continue
        label = " ".join(words[:-9])
        rows[label] = {
            "regs": int(words[-9]), "smem": int(words[-8]), "stack": int(words[-7]), "spills": int(words[-6]),
            "hgmma": int(words[-3]), "utmaldg": int(words[-2]), "local": int(words[-1]),
        }
    return rows


def digest(path: str) -> dict:
    verdicts = {}
    current = None
    for line in open(path):
        match = re.match(r"(DIFFERENT|PARAMS) (\S+?)(?::|$)", line)
        if match:
            current = match.group(2)
            verdicts[current] = {"verdict": match.group(1).lower()}
            continue
        match = re.search(r"hot loop: .*total=(\d+)  ->  .*total=(\d+)", line)
        if match and current:
            verdicts[current]["hot"] = (int(match.group(1)), int(match.group(2)))
    return verdicts


# Per SM: registers, shared memory usable by CTAs, resident warps, resident CTAs.
SM_LIMITS = {
    "sm_80": (65536, 167936, 64, 32), "sm_86": (65536, 102400, 48, 16), "sm_89": (65536, 102400, 48, 24),
    "sm_90a": (65536, 233472, 64, 32),
}


def ctas_per_sm(label: str, regs: int, smem: int):
    """CTAs per SM by the occupancy calculator's rules, or None for a label without "/Nw"."""
    warps = re.search(r"/(\d+)w", label)
    arch = label.split()[-1]
    if not warps or arch not in SM_LIMITS:
        return None
    warps = int(warps.group(1))
    registers, shared, max_warps, max_ctas = SM_LIMITS[arch]
    per_warp = -(-regs * 32 // 256) * 256                # registers are allocated per warp, 256 at a time
    by_regs = (registers // per_warp) // warps
    by_smem = shared // (smem + 1024) if smem else max_ctas   # 1 KiB reserved per CTA
    return min(by_regs, by_smem, max_warps // warps, max_ctas)


def file_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "=._-" else "_" for c in label)


# Opcodes of integer, uniform-datapath (U*) and control instructions.
INTEGER_OPCODES = {
    "IADD3", "IMAD", "ISETP", "LOP3", "SEL", "LEA", "SHF", "MOV", "PLOP3", "VIADD", "VIMNMX", "VIADDMNMX",
    "BRA", "NOP", "IMNMX", "P2R", "R2P", "LDC", "IABS", "PRMT", "S2R", "CS2R", "S2UR", "R2UR", "BSSY", "BSYNC",
    "WARPSYNC", "FLO", "POPC", "BREV",
}


def integer_only(before_dump: str, after_dump: str, label: str):
    """Whether the hot loop's opcode change is integer/uniform/control only (None without SASS)."""
    import importlib.util, os
    spec = importlib.util.spec_from_file_location("sass_digest", os.path.join(os.path.dirname(__file__), "sass-digest.py"))
    digest_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digest_module)
    name = file_name(label)
    paths = [os.path.join(folder, name + ".cubin") for folder in (before_dump, after_dump)]
    if not all(os.path.exists(path) for path in paths):
        return None
    tool = digest_module.cuobjdump()
    loops = [digest_module.mma_loops(digest_module.instructions(path, tool))[0] for path in paths]
    change = loops[1].copy()
    change.subtract(loops[0])
    return all(op in INTEGER_OPCODES or op.startswith("U") for op, count in change.items() if count)


def digest_of(verdicts: dict, label: str) -> dict:
    return verdicts.get(file_name(label), {"verdict": "identical"})


def main() -> int:
    before, after, verdicts = report(sys.argv[1]), report(sys.argv[2]), digest(sys.argv[3])
    counts = {
        "regs better": 0, "regs equal": 0, "regs worse": 0, "spills": 0, "hot loop longer": 0,
        "fewer CTAs/SM": 0, "more CTAs/SM": 0,
    }
    lines = []
    for label in sorted(set(before) | set(after)):
        b, a = before.get(label), after.get(label)
        if not b or not a:
            lines.append(f"| {label} | only {'after' if a else 'before'} | | | | | | |")
            continue
        counts["regs " + ("better" if a["regs"] < b["regs"] else "equal" if a["regs"] == b["regs"] else "worse")] += 1
        if a["spills"] or a["local"]:
            counts["spills"] += 1
        verdict = digest_of(verdicts, label)
        hot = verdict.get("hot")
        if hot and hot[1] > hot[0]:
            counts["hot loop longer"] += 1
        def pair(key):
            return f"{b[key]}" if a[key] == b[key] else f"{b[key]} → {a[key]}"
        occupancy = ""
        ctas = (ctas_per_sm(label, b["regs"], b["smem"]), ctas_per_sm(label, a["regs"], a["smem"]))
        if ctas[0] is not None:
            occupancy = f"{ctas[0]}" if ctas[0] == ctas[1] else f"{ctas[0]} → {ctas[1]}"
            if ctas[1] < ctas[0]:
                counts["fewer CTAs/SM"] += 1
            elif ctas[1] > ctas[0]:
                counts["more CTAs/SM"] += 1
        lines.append(
            f"| {label} | {pair('regs')} | {occupancy} | {pair('smem')} | {pair('spills')} "
            f"| {pair('hgmma')}/{pair('utmaldg')} | {verdict['verdict']} | {f'{hot[0]} → {hot[1]}' if hot else ''} |")
    print("; ".join(f"{value} {key}" for key, value in counts.items()))
    print()
    # The hot loop's length change per kernel family (label's first word), over the variants
    # whose SASS differs.
    dumps = sys.argv[4:6] if len(sys.argv) >= 6 else None
    families, integer_counts = {}, {}
    for label in after:
        hot = digest_of(verdicts, label).get("hot")
        if hot and hot[0]:
            family = label.split()[0]
            families.setdefault(family, []).append(100.0 * (hot[1] - hot[0]) / hot[0])
            if dumps and integer_only(dumps[0], dumps[1], label):
                integer_counts[family] = integer_counts.get(family, 0) + 1
    if families:
        extra = " integer/uniform/control-only change |" if dumps else ""
        print("| kernel family | variants | hot loop change: mean | min | max |" + extra)
        print("|---|---|---|---|---|" + ("---|" if dumps else ""))
        for family, changes in sorted(families.items()):
            column = f" {integer_counts.get(family, 0)} of {len(changes)} |" if dumps else ""
            print(f"| {family} | {len(changes)} | {sum(changes) / len(changes):+.2f} % | {min(changes):+.2f} % "
                  f"| {max(changes):+.2f} % |" + column)
        print()
    print("| kernel | registers | CTAs/SM | shared memory | spills | HGMMA/UTMALDG | SASS | hot loop |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
