#!/usr/bin/env python3
"""Writes the wgmma wrapper block of hopper_common.cuh (between the GENERATED markers).

Inline PTX needs every accumulator register spelled out as an asm operand, so each N gets its
own wrapper; this script writes them instead of hand-typing 128-operand lists.
"""
import pathlib, re, sys

NS = [32, 64, 80, 96, 112, 128, 144, 160, 176, 192, 256]
SRC = pathlib.Path(__file__).resolve().parents[1] / "Sources/FlashAttentionCUDA/Kernels/hopper/common.cuh"


def wrapper(n: int) -> str:
    r = n // 2
    regs = ", ".join(f"%{i}" for i in range(r))
    outs = ", ".join(f'"+f"(d[{i}])' for i in range(r))
    ss = (
        f"  static __device__ __forceinline__ void ss(float (&d)[{r}], u64 da, u64 db, int accumulate) {{\n"
        f"    asm volatile(\"{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{r + 2}, 0;\\n\"\n"
        f"      \"wgmma.mma_async.sync.aligned.m64n{n}k16.f32.\" FA_WG_T \".\" FA_WG_T \" \"\n"
        f"      \"{{{regs}}}, %{r}, %{r + 1}, p, 1, 1, 0, 0;\\n}}\\n\"\n"
        f"      : {outs}\n"
        f"      : \"l\"(da), \"l\"(db), \"r\"(accumulate));\n"
        f"  }}\n"
    )
    # B from shared memory stored MN-major (transposed), as the backward's dQ = dS K reads K.
    ss_tb = ss.replace("void ss(", "void ss_tb(").replace("p, 1, 1, 0, 0;", "p, 1, 1, 0, 1;")
    # Both from shared memory stored MN-major, as the d = 256 backward's dV += P^T dO reads P.
    ss_ta_tb = ss.replace("void ss(", "void ss_ta_tb(").replace("p, 1, 1, 0, 0;", "p, 1, 1, 1, 1;")
    rs = (
        f"  static __device__ __forceinline__ void rs(float (&d)[{r}], const u32 (&a)[4], u64 db, int accumulate) {{\n"
        f"    asm volatile(\"{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{r + 5}, 0;\\n\"\n"
        f"      \"wgmma.mma_async.sync.aligned.m64n{n}k16.f32.\" FA_WG_T \".\" FA_WG_T \" \"\n"
        f"      \"{{{regs}}}, {{%{r}, %{r + 1}, %{r + 2}, %{r + 3}}}, %{r + 4}, p, 1, 1, 1;\\n}}\\n\"\n"
        f"      : {outs}\n"
        f"      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(db), \"r\"(accumulate));\n"
        f"  }}\n"
    )
    return f"template <> struct Wgmma<{n}> {{\n{ss}{ss_tb}{ss_ta_tb}{rs}}};\n"


def block() -> str:
    body = "template <int N> struct Wgmma;\n" + "".join(wrapper(n) for n in NS)
    return "// BEGIN GENERATED WGMMA (benchmarks/hopper/gen_wgmma.py)\n" + body + "// END GENERATED WGMMA\n"


if __name__ == "__main__":
    text = SRC.read_text()
    new = re.sub(r"// BEGIN GENERATED WGMMA.*?// END GENERATED WGMMA\n", lambda _: block(), text, flags=re.S)
    if new == text and "BEGIN GENERATED WGMMA" not in text:
        sys.exit("markers not found")
    SRC.write_text(new)
