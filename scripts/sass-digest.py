#!/usr/bin/env python3
"""Digests and compares the SASS of two kernel dumps (`flash-attention kernels --dump DIR`).

    scripts/sass-digest.py DIR                 one line per kernel: instructions, digests
    scripts/sass-digest.py BEFORE AFTER        per kernel: identical, identical but for the
                                               parameter-bank offsets, or how it differs

The SASS comes from `cuobjdump -sass` (PATH, FLASH_ATTENTION_CUOBJDUMP, or the PyPI wheel
nvidia-cuda-cuobjdump). Addresses and encodings are dropped; the "params" digest also replaces
every kernel-parameter operand `c[0x0][0x...]` by `c[0x0][P]`, so a kernel whose parameters only
moved (one struct instead of a positional list) compares equal there. Exit status 1 when a kernel
differs beyond its parameter offsets, or exists on one side only.
"""
import collections, concurrent.futures, glob, hashlib, os, re, shutil, subprocess, sys

ADDRESS = re.compile(r"^\s*/\*[0-9a-f]{4,}\*/\s*")
ENCODING = re.compile(r"\s*/\*\s*0x[0-9a-f]{16}\s*\*/\s*$")
PARAM = re.compile(r"c\[0x0\]\[0x[0-9a-f]+\]")
# `;` ends an instruction; the rest of the line is its encoding comment.
INSTRUCTION = re.compile(r"^(.*?;)")


def cuobjdump() -> str:
    explicit = os.environ.get("FLASH_ATTENTION_CUOBJDUMP")
    if explicit:
        return explicit
    found = shutil.which("cuobjdump")
    if found:
        return found
    hits = glob.glob(os.path.expanduser("~/.pyenv/versions/*/lib/python3*/site-packages/nvidia/cu13/bin/cuobjdump"))
    hits += glob.glob("/usr/local/lib/python3*/*-packages/nvidia/cu13/bin/cuobjdump")
    if not hits:
        sys.exit("cuobjdump not found: pip install nvidia-cuda-cuobjdump or set FLASH_ATTENTION_CUOBJDUMP")
    return hits[0]


def instructions(cubin: str, tool: str) -> list[str]:
    """The kernel's instructions, one per line (cached beside the cubin as .sass)."""
    cached = cubin[: -len(".cubin")] + ".sass"
    if os.path.exists(cached) and os.path.getmtime(cached) >= os.path.getmtime(cubin):
        return open(cached).read().splitlines()
    text = subprocess.run([tool, "-sass", cubin], check=True, capture_output=True, text=True).stdout
    result = []
    for line in text.splitlines():
        if not ADDRESS.match(line):
            continue
        body = ADDRESS.sub("", line)
        match = INSTRUCTION.match(body)
        if match:
            result.append(" ".join(match.group(1).split()))
    with open(cached, "w") as file:
        file.write("\n".join(result) + "\n")
    return result


# Opcodes that say what a loop iteration costs: tensor-core math, exponentials, shared-memory
# and global traffic, barriers.
KEY_OPCODES = ("HMMA", "HGMMA", "QGMMA", "MUFU", "LDSM", "LDS", "STS", "LDG", "STG", "LDGSTS", "UTMALDG", "SYNCS", "BAR", "RED", "FFMA", "FMUL", "FADD")


def mma_loops(lines: list[str]) -> tuple[collections.Counter, collections.Counter]:
    """The opcodes of two loops holding tensor-core instructions: the hot loop (the smallest one
    holding at least 40 % of the most exponentials any such loop holds: the key-tile or step loop
    with its softmax, not a GEMM's k-loop nor the loop over work tiles around it) and the one
    holding the most tensor-core instructions (the loop over tiles). Loops are the ranges
    [target, branch] of backward branches; with 16-byte instructions, a target address / 16 is
    the target's index."""
    loops = []
    for index, line in enumerate(lines):
        match = re.search(r"\bBRA(?:\.\w+)* (?:\w+, )?0x([0-9a-f]+)", line)
        if not match:
            continue
        target = int(match.group(1), 16) // 16
        if target > index:
            continue
        body = opcode_counts(lines[target : index + 1])
        if body["HMMA"] + body["HGMMA"] + body["QGMMA"]:
            loops.append((index - target, body))
    if not loops:
        return collections.Counter(), collections.Counter()
    # A range that also holds TMA loads spans the producer's code too (ptxas places the
    # warp-specialized paths apart, so a retry branch can reach across them): not a real loop.
    consumer = [loop for loop in loops if not loop[1]["UTMALDG"]] or loops
    most_exponentials = max(body["MUFU"] for _, body in consumer)
    hot = [loop for loop in consumer if loop[1]["MUFU"] * 5 >= most_exponentials * 2]
    innermost = min(hot, key=lambda loop: loop[0])[1]
    busiest = max(loops, key=lambda loop: (loop[1]["HMMA"] + loop[1]["HGMMA"] + loop[1]["QGMMA"], -loop[0]))[1]
    return innermost, busiest


def loop_summary(counts: collections.Counter) -> str:
    return " ".join(f"{op}={counts[op]}" for op in KEY_OPCODES if counts[op]) + f" total={sum(counts.values())}"


def resources(log_path: str) -> str:
    if not os.path.exists(log_path):
        return ""
    log = open(log_path).read()
    regs = re.search(r"Used (\d+) registers", log)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return f"regs={regs.group(1) if regs else '?'} spills={spill.group(1) + '/' + spill.group(2) if spill else '?'}"


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def load(folder: str, tool: str) -> dict:
    kernels = {}
    cubins = sorted(glob.glob(os.path.join(folder, "*.cubin")))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        listings = pool.map(lambda path: instructions(path, tool), cubins)
    for cubin, lines in zip(cubins, listings):
        name = os.path.basename(cubin)[: -len(".cubin")]
        masked = [PARAM.sub("c[0x0][P]", line) for line in lines]
        kernels[name] = {
            "lines": lines,
            "exact": digest(lines),
            "params": digest(masked),
            "masked": masked,
            "resources": resources(cubin[: -len(".cubin")] + ".log"),
        }
    return kernels


def opcode_counts(lines: list[str]) -> collections.Counter:
    counts = collections.Counter()
    for line in lines:
        words = line.rstrip(";").split()
        if words and words[0].startswith("@"):
            words = words[1:]
        if words:
            counts[words[0].split(".")[0]] += 1
    return counts


def main() -> int:
    tool = cuobjdump()
    if len(sys.argv) == 2:
        for name, k in load(sys.argv[1], tool).items():
            print(f"{name:80s} {len(k['lines']):6d} {k['exact']} {k['params']} {k['resources']}")
        return 0
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    before, after = load(sys.argv[1], tool), load(sys.argv[2], tool)
    tally = collections.Counter()
    problems = 0
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            print(f"ONLY-{'AFTER' if name in after else 'BEFORE'} {name}")
            tally["one side only"] += 1
            problems += 1
            continue
        b, a = before[name], after[name]
        if b["exact"] == a["exact"]:
            tally["identical"] += 1
            continue
        if b["params"] == a["params"]:
            tally["parameter offsets only"] += 1
            print(f"PARAMS    {name}")
            continue
        tally["different"] += 1
        problems += 1
        delta = opcode_counts(a["masked"]) - opcode_counts(b["masked"])
        fewer = opcode_counts(b["masked"]) - opcode_counts(a["masked"])
        print(
            f"DIFFERENT {name}: {len(b['lines'])} -> {len(a['lines'])} instructions; "
            f"{b['resources']} -> {a['resources']}; +{dict(delta)} -{dict(fewer)}\n"
            f"    hot loop: {loop_summary(mma_loops(b['lines'])[0])}  ->  {loop_summary(mma_loops(a['lines'])[0])}\n"
            f"    busiest MMA loop:   {loop_summary(mma_loops(b['lines'])[1])}  ->  {loop_summary(mma_loops(a['lines'])[1])}")
    print("; ".join(f"{count} {label}" for label, count in tally.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
