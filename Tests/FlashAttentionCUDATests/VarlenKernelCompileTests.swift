import Testing
import FlashAttentionCore
@testable import FlashAttentionCUDA

@Suite("Varlen kernel compilation (NVRTC, no GPU)")
struct VarlenKernelCompileTests {
  @Test(
    "every varlen kernel variant compiles without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_80", "sm_90a"])
  func varlenCatalogCompiles(arch: String) throws {
    let keys = CUDAKernelCatalog.varlenKeys(arch: arch)
    #expect(keys.contains { $0 is VarlenClearKey })
    for key in keys {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      #expect(resources.registers <= 255)
    }
  }

  @Test("a varlen key's program differs from the fixed-length one only by FA_VARLEN")
  func varlenFlagOnly() {
    for kind in FlashAttention2Key.Kind.allCases {
      let fixed = FlashAttention2Key.make(
        kind: kind, headDim: 128, headDimV: 128, dtype: .bfloat16, masked: true, softcap: false,
        deterministic: false, arch: "sm_90a")
      let varlen = FlashAttention2Key.make(
        kind: kind, headDim: 128, headDimV: 128, dtype: .bfloat16, masked: true, softcap: false,
        deterministic: false, arch: "sm_90a", varlen: true)
      #expect(fixed != varlen)
      #expect(!fixed.program.source.contains("#define FA_VARLEN"))
      #expect(varlen.program.source.contains("#define FA_VARLEN 1\n"))
      #expect(varlen.program.source.replacingOccurrences(of: "#define FA_VARLEN 1\n", with: "") == fixed.program.source)
      #expect(varlen.tile == fixed.tile)
    }
  }
}
