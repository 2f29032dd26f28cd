"""Compiles the Hopper kernels (hopper_common.cuh + hopper_forward.cu or hopper_backward.cu) with NVRTC
(ctypes, no CUDA headers) for one kernel configuration."""
import ctypes, glob, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOPPER = ROOT / "Sources/FlashAttentionCUDA/Hopper"
SRC = HOPPER / "hopper_forward.cu"
BWD_SRC = HOPPER / "hopper_backward.cu"
BWD_DQ_SRC = HOPPER / "hopper_backward_dq.cu"
COMMON = HOPPER / "hopper_common.cuh"


def _load_nvrtc():
    cands = [os.environ.get("FLASH_ATTENTION_NVRTC", ""), "/usr/local/cuda/lib64/libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so"]
    import site
    for sp in site.getsitepackages():
        cands += glob.glob(os.path.join(sp, "nvidia/cu13/lib/libnvrtc.so*"))
    for c in cands:
        if not c:
            continue
        try:
            return ctypes.CDLL(c)
        except OSError:
            pass
    raise RuntimeError("libnvrtc not found")


_nv = None


def config_defines(cfg: dict) -> str:
    keys = ["HEAD_DIM", "HEAD_DIM_V", "BLOCK_N", "STAGES", "FP16", "CAUSAL", "WINDOW", "SOFTCAP", "PINGPONG", "OVERLAP", "Q_STAGES", "EXP_POLY", "CONSUMERS", "DQ_BLOCK_N", "BWD_SKIP_DQ"]
    return "".join(f"#define FA_{k} {int(cfg[k.lower()])}\n" for k in keys if k.lower() in cfg)


def compile_source(src: str, name: str, arch: str, opts=()):
    """NVRTC: CUDA C++ source -> (CUBIN bytes, log). Raises with the log on a compile error.
    Shared by this harness and benchmarks/bwd/kernel_source.py."""
    global _nv
    if _nv is None:
        _nv = _load_nvrtc()
    nv = _nv
    prog = ctypes.c_void_p()
    r = nv.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(), 0, None, None)
    assert r == 0, r
    options = [f"-arch={arch}".encode(), b"-std=c++17", b"-default-device", b"-Xptxas=-v", *[o.encode() for o in opts]]
    arr = (ctypes.c_char_p * len(options))(*options)
    rc = nv.nvrtcCompileProgram(prog, len(options), arr)
    n = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetProgramLog(prog, log)
    logs = log.value.decode(errors="replace")
    if rc != 0:
        nv.nvrtcDestroyProgram(ctypes.byref(prog))
        raise RuntimeError(f"NVRTC failed ({rc}):\n{logs}")
    nv.nvrtcGetCUBINSize(prog, ctypes.byref(n))
    buf = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetCUBIN(prog, buf)
    nv.nvrtcDestroyProgram(ctypes.byref(prog))
    return buf.raw, logs


def compile_cubin(cfg: dict, arch="sm_90a", extra_opts=()):
    # cfg["source"]: another version of the kernel (a file under benchmarks/hopper/) to A/B against.
    # cfg["kernel"]: "backward" (key/value kernel) or "backward_dq" (the split backward's dQ).
    default = {"backward": BWD_SRC, "backward_dq": BWD_DQ_SRC}.get(cfg.get("kernel"), SRC)
    path = ROOT / "benchmarks/hopper" / cfg["source"] if "source" in cfg else default
    # cfg["extra"]: further #defines of an experiment, {name: value}.
    extra = "".join(f"#define {k} {v}\n" for k, v in cfg.get("extra", {}).items())
    return compile_source(config_defines(cfg) + extra + COMMON.read_text() + path.read_text(), path.name, arch,
                          ("--use_fast_math", *extra_opts))
