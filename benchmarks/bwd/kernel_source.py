"""The backward kernel source as the Swift package embeds it (KernelSource+Common.swift and
KernelSource+Backward.swift), with a configuration's #defines, compiled by NVRTC (ctypes)."""
import pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks/hopper"))
import nvrtc_build  # noqa: E402  (the one NVRTC loader and compile routine of the harnesses)

KERNELS = ROOT / "Sources/FlashAttentionCUDA/Kernels"


def swift_literal(path: pathlib.Path) -> str:
    text = path.read_text()
    return text[text.index('#"""\n') + 5:text.index('"""#')]


def pad32(x):
    return (x + 31) // 32 * 32


def defines(cfg: dict, entry: str) -> str:
    """cfg: d, dv, bf16, masked, softcap, bm, bn, warps, wm_s, wn_kv, wm_q, double, unroll, dq_bulk."""
    items = {
        "FA_D": cfg["d"], "FA_DV": cfg["dv"], "FA_BM": cfg["bm"], "FA_BN": cfg["bn"], "FA_WARPS": cfg["warps"],
        "FA_BF16": int(cfg["bf16"]), "FA_CAUSAL_OR_WINDOW": int(cfg["masked"]), "FA_SOFTCAP": int(cfg["softcap"]),
        "FA_BWD_WM_S": cfg["wm_s"], "FA_BWD_WN_KV": cfg["wn_kv"], "FA_BWD_WM_Q": cfg["wm_q"],
        "FA_BWD_DOUBLE": int(cfg["double"]), "FA_BWD_UNROLL": cfg.get("unroll", 1), f"FA_ENTRY_{entry}": 1,
        "FA_DQ_BULK": int(cfg.get("dq_bulk", 0)),
    }
    return "".join(f"#define {k} {v}\n" for k, v in sorted(items.items()))


def source(cfg: dict, entry: str) -> str:
    # FA_BWD_SOURCE: an experimental copy of the backward source (plain CUDA) to A/B against.
    body = pathlib.Path(cfg["source"]).read_text() if cfg.get("source") else swift_literal(KERNELS / "KernelSource+Backward.swift")
    extra = "".join(f"#define {k} {v}\n" for k, v in cfg.get("extra", {}).items())
    return defines(cfg, entry) + extra + swift_literal(KERNELS / "KernelSource+Common.swift") + body


def smem_bytes(cfg: dict) -> int:
    qk, vp = pad32(cfg["d"]) + 8, pad32(cfg["dv"]) + 8
    nbuf = 2 if cfg["double"] else 1
    halves = cfg["bn"] * (qk + vp) + nbuf * cfg["bm"] * (qk + vp) + 2 * cfg["bm"] * (cfg["bn"] + 8)
    staging = cfg["bm"] * pad32(cfg["d"]) * 4 if cfg.get("dq_bulk") == 1 else 0   # the dQ pieces
    return halves * 2 + 2 * nbuf * cfg["bm"] * 4 + staging


def accumulator_floats(cfg: dict, b: int, sq: int, hq: int) -> int:
    """The dQ accumulator: [b, sq, hq, d], or whole padded query blocks with FA_DQ_BULK."""
    if cfg.get("dq_bulk"):
        return b * hq * ((sq + cfg["bm"] - 1) // cfg["bm"]) * cfg["bm"] * pad32(cfg["d"])
    return b * sq * hq * cfg["d"]


def compile_cubin(cfg: dict, entry: str, arch="sm_90a"):
    """Returns (cubin bytes, log, registers, spill bytes)."""
    cubin, logs = nvrtc_build.compile_source(source(cfg, entry), "backward.cu", arch)
    regs = int(m.group(1)) if (m := re.search(r"Used (\d+) registers", logs)) else -1
    spills = sum(int(x) for x in re.findall(r"(\d+) bytes spill", logs))
    stack = sum(int(x) for x in re.findall(r"(\d+) bytes stack frame", logs))
    return cubin, logs, regs, spills + stack
