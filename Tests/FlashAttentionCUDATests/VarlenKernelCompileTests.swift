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
    // The Hopper variants compile in the test below (their heaviest) and in `kernels`.
    let keys = CUDAKernelCatalog.varlenKeys(arch: arch).filter { !($0 is HopperForwardKey) }
    #expect(keys.contains { $0 is VarlenClearKey })
    #expect(keys.contains { $0 is VarlenScheduleKey })
    for key in keys {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      #expect(resources.registers <= 255)
    }
  }

  @Test(
    "the heaviest Hopper forward variants compile with FA_VARLEN for sm_90a without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func hopperVarlenCompiles() throws {
    // As HopperForwardCompileTests: softcap and masked at every head dim, the wide unmasked
    // d = 128 tile, and the three-consumer d = 64 window tile (the tightest register budget),
    // plus the persistent-grid tiles the varlen benchmark runs (bf16, d 64 and 128).
    var keys: [HopperForwardKey?] = HopperForwardKey.supportedHeadDims.map {
      HopperForwardKey(headDim: $0.0, headDimV: $0.1, dtype: .bfloat16, mask: .causal, softcap: true)
    }
    keys.append(HopperForwardKey(headDim: 128, headDimV: 128, dtype: .bfloat16, mask: .none, softcap: true))
    keys.append(HopperForwardKey(headDim: 64, headDimV: 64, dtype: .bfloat16, mask: .window, softcap: false))
    for d in [64, 128] {
      for mask in HopperForwardKey.MaskKind.allCases {
        keys.append(
          HopperForwardKey(
            headDim: d, headDimV: d, dtype: .bfloat16, mask: mask, softcap: false, persistent: true, seqlenK: 8192))
      }
    }
    for candidate in keys {
      var key = try #require(candidate)
      key.varlen = true
      #expect(key.program.source.contains("#define FA_VARLEN 1\n"))
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }

  @Test(
    "every Hopper backward variant compiles with FA_VARLEN for sm_90a without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func hopperBackwardVarlenCompiles() throws {
    for var key in HopperBackwardKey.allVariants {
      key.varlen = true
      try expectCleanHopperCompile(key.program, "\(key)")
    }
    for var key in HopperBackwardDQKey.allVariants {
      key.varlen = true
      try expectCleanHopperCompile(key.program, "\(key)")
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
