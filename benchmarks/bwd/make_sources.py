"""Recreates the kernel copies that harness plans 8-14 compile instead of the shipped source:

    python3 benchmarks/bwd/make_sources.py          # writes base7.cu, base8.cu, abl.cu here

base7.cu: db3966c's kernel, the atomics kernel that labels A of plans 8-9 timed (the copy those
plans compiled also carried the first bulk-reduction path, used by plan 8's B labels; that
intermediate state was never committed and is not recreated). base8.cu: c21e393's kernel (plan 10, label P). abl.cu: the
shipped kernel with timing-only ablation switches (plans 13-14): X_NO_DQ, X_NO_DQ_STORE,
X_NO_DQ_RED, X_NO_LOAD, X_NO_SDP, X_NO_KV. Ablated kernels compute wrong gradients.
"""
import pathlib, subprocess
import kernel_source as ks

HERE = pathlib.Path(__file__).resolve().parent
PATH = "Sources/FlashAttentionCUDA/Kernels/KernelSource+Backward.swift"


def literal_at(commit: str) -> str:
    text = subprocess.run(["git", "show", f"{commit}:{PATH}"], cwd=ks.ROOT, capture_output=True, text=True, check=True).stdout
    return text[text.index('#"""\n') + 5:text.index('"""#')]


def ablation() -> str:
    s = ks.swift_literal(ks.KERNELS / "KernelSource+Backward.swift")

    def rep(old, new):
        nonlocal s
        assert s.count(old) == 1, old[:80]
        s = s.replace(old, new)

    a = s.index("    {\n      // dQ[m0.., :] += dS K")
    b = s.index("    if (!FA_BWD_DOUBLE && step + 1 < steps) {")
    s = s[:a] + "#if !X_NO_DQ\n" + s[a:b] + "#endif\n" + s[b:]
    rep("if (FA_BWD_DOUBLE && FA_DQ_BULK != 2 && step + 1 < steps) issue_load(",
        "if (!X_NO_LOAD && FA_BWD_DOUBLE && FA_DQ_BULK != 2 && step + 1 < steps) issue_load(")
    rep("    if (step + 1 < steps) issue_load(step + 1, next_head, next_block);",
        "    if (!X_NO_LOAD && step + 1 < steps) issue_load(step + 1, next_head, next_block);")
    rep("      warp_gemm<TM_S / 16, TN_S / 8, D_PAD / 16, false, false, QK_PITCH, QK_PITCH>(",
        "#if !X_NO_SDP\n      warp_gemm<TM_S / 16, TN_S / 8, D_PAD / 16, false, false, QK_PITCH, QK_PITCH>(")
    rep("          acc_dp, sdO + s_m * V_PITCH, sV + s_n * V_PITCH, lane);\n",
        "          acc_dp, sdO + s_m * V_PITCH, sV + s_n * V_PITCH, lane);\n#endif\n")
    rep("    warp_gemm<TN_KV / 16, TD_V / 8, FA_BM / 16, true, true, P_PITCH, V_PITCH>(",
        "#if !X_NO_KV\n    warp_gemm<TN_KV / 16, TD_V / 8, FA_BM / 16, true, true, P_PITCH, V_PITCH>(")
    rep("        acc_dk, sdS + kv_n, sQ + kv_d * TD_K, lane);\n", "        acc_dk, sdS + kv_n, sQ + kv_d * TD_K, lane);\n#endif\n")
    # X_NO_DQ_STORE: the dQ GEMM runs (its sum kept alive) but nothing is staged or reduced.
    rep("#if FA_DQ_BULK\n      // This warp's piece: wait until", """#if X_NO_DQ_STORE
      #pragma unroll
      for (int i = 0; i < TM_Q / 16; ++i)
        #pragma unroll
        for (int j = 0; j < TD_Q / 8; ++j)
          asm volatile("add.f32 %0, %0, %1;\\n" : "+f"(acc_dq[0][0][0]) : "f"(acc_dq[i][j][0] + acc_dq[i][j][1] + acc_dq[i][j][2] + acc_dq[i][j][3]));
      if (acc_dq[0][0][0] == 12345.f) dq_accum[0] = 1.f;   // keeps the sum alive
#elif FA_DQ_BULK
      // This warp's piece: wait until""")
    rep("        bulk_reduce_add(dq_accum + index * DQ_PIECE, piece, DQ_PIECE * 4);",
        "        if (!X_NO_DQ_RED) bulk_reduce_add(dq_accum + index * DQ_PIECE, piece, DQ_PIECE * 4);")
    head = "".join(f"#ifndef {x}\n#define {x} 0\n#endif\n" for x in ("X_NO_DQ", "X_NO_DQ_STORE", "X_NO_DQ_RED", "X_NO_LOAD", "X_NO_SDP", "X_NO_KV"))
    return head + s


if __name__ == "__main__":
    (HERE / "base7.cu").write_text(literal_at("db3966c"))
    (HERE / "base8.cu").write_text(literal_at("c21e393"))
    (HERE / "abl.cu").write_text(ablation())
    print("wrote base7.cu base8.cu abl.cu")
