#!/usr/bin/env python3
"""A markdown before/after table of the CUDA kernels (scripts/kernel-report.sh's outputs).

    scripts/kernel-compare.py BEFORE_KERNELS.txt AFTER_KERNELS.txt SASS_DIGEST.txt > table.md

BEFORE/AFTER: `flash-attention kernels --exhaustive --sass` reports of one architecture;
SASS_DIGEST: `scripts/sass-digest.py BEFORE_DUMP AFTER_DUMP` of the same. One row per variant:
registers, shared memory, spills, HGMMA and UTMALDG counts before -> after, the SASS verdict,
and the hot loop's instruction count (see sass-digest.py) where the SASS differs. A summary on
top counts what got better, worse or stayed.
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


def file_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "=._-" else "_" for c in label)


def main() -> int:
    before, after, verdicts = report(sys.argv[1]), report(sys.argv[2]), digest(sys.argv[3])
    counts = {"regs better": 0, "regs equal": 0, "regs worse": 0, "spills": 0, "hot loop longer": 0}
    lines = []
    for label in sorted(set(before) | set(after)):
        b, a = before.get(label), after.get(label)
        if not b or not a:
            lines.append(f"| {label} | only {'after' if a else 'before'} | | | | | |")
            continue
        counts["regs " + ("better" if a["regs"] < b["regs"] else "equal" if a["regs"] == b["regs"] else "worse")] += 1
        if a["spills"] or a["local"]:
            counts["spills"] += 1
        verdict = verdicts.get(file_name(label), {"verdict": "identical"})
        hot = verdict.get("hot")
        if hot and hot[1] > hot[0]:
            counts["hot loop longer"] += 1
        def pair(key):
            return f"{b[key]}" if a[key] == b[key] else f"{b[key]} → {a[key]}"
        lines.append(
            f"| {label} | {pair('regs')} | {pair('smem')} | {pair('spills')} | {pair('hgmma')}/{pair('utmaldg')} "
            f"| {verdict['verdict']} | {f'{hot[0]} → {hot[1]}' if hot else ''} |")
    print("; ".join(f"{value} {key}" for key, value in counts.items()))
    print()
    print("| kernel | registers | shared memory | spills | HGMMA/UTMALDG | SASS | hot loop |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
