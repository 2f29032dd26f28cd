import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// The Hopper backward's key and resources; its numerics run on the device (`verify --device cuda`).
@Suite struct HopperBackwardTests {
  @Test func keysCoverHeadDims64To256() throws {
    for d in [64, 128, 256] {
      for dtype in [DType.float16, .bfloat16] {
        for mask in HopperForwardKey.MaskKind.allCases {
          let key = try #require(HopperBackwardKey(headDim: d, dtype: dtype, mask: mask), "no key for d=\(d) \(dtype) \(mask)")
          #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
          #expect(key.program.source.contains("#define FA_HEAD_DIM \(d)\n"))
          #expect(key.program.entry == "flash_bwd_hopper")
        }
      }
    }
    #expect(HopperBackwardKey(headDim: 128, dtype: .float32, mask: .none) == nil)
    #expect(HopperBackwardKey(headDim: 96, dtype: .bfloat16, mask: .none) == nil)
    #expect(HopperBackwardKey(headDim: 192, dtype: .bfloat16, mask: .none) == nil)
    let variants = HopperBackwardKey.allVariants
    #expect(variants.count == 3 * 2 * 3 * 2)
    #expect(Set(variants.map(\.program)).count == variants.count)
    let dq = HopperBackwardDQKey.allVariants
    #expect(dq.count == 3 * 2 * 3)
    #expect(Set(dq.map(\.program)).count == dq.count)
    for key in dq {
      #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
      #expect(key.program.entry == "flash_bwd_dq_hopper")
    }
    #expect(HopperBackwardDQKey(headDim: 96, dtype: .bfloat16, mask: .none) == nil)
  }

  /// The layout in the kernel: 1024-byte alignment slack, K and V, two Q/dO buffers, two dS
  /// buffers (d = 256: and two P buffers), LSE/D rows and the barriers. d = 128: 160 KiB of
  /// tiles; d = 256: 224 KiB, within the 227 KiB an H100 block may use.
  @Test func sharedMemoryCountsEveryBuffer() throws {
    let key = try #require(HopperBackwardKey(headDim: 128, dtype: .bfloat16, mask: .none))
    #expect(key.blockN == 128)
    #expect(key.sharedMemoryBytes == 1024 + 160 * 1024 + 2 * 512 + 8 + 64)
    let wide = try #require(HopperBackwardKey(headDim: 256, dtype: .bfloat16, mask: .causal))
    #expect(wide.blockN == 64)
    #expect(wide.sharedMemoryBytes == 1024 + 224 * 1024 + 2 * 512 + 8 + 64)
    #expect(wide.sharedMemoryBytes <= 227 * 1024)
  }

  /// Which calls the Hopper kernels take (supported head dims and dtypes, no softcap, sm_90a),
  /// and which base form: split from d = 128 on and in the deterministic mode, fused at d = 64
  /// (`TileTables.hopperBackwardTakesBulk` then moves plain d = 64/128 calls to bulk reductions).
  @Test func coverageAndForm() {
    func covered(_ d: Int, _ dv: Int, _ dtype: DType = .bfloat16, softcap: Float = 0, arch: String = "sm_90a") -> Bool {
      KernelSelection.hopperBackwardCoverage(headDim: d, headDimV: dv, dtype: dtype, softcap: softcap, arch: arch) == nil
    }
    #expect(covered(64, 64) && covered(128, 128, .float16) && covered(256, 256))
    #expect(!covered(128, 128, arch: "sm_80"))
    #expect(!covered(128, 128, softcap: 30))
    #expect(!covered(192, 128) && !covered(96, 96) && !covered(128, 128, .float32))
    #expect(!TileTables.hopperBackwardIsSplit(headDim: 64, deterministic: false))
    #expect(TileTables.hopperBackwardIsSplit(headDim: 64, deterministic: true))
    #expect(TileTables.hopperBackwardIsSplit(headDim: 128, deterministic: false))
    #expect(TileTables.hopperBackwardIsSplit(headDim: 256, deterministic: false))
  }

  /// The dQ kernel's tile: 32 keys at d = 256 (two K/V stages beside Q and dO), 64 elsewhere.
  @Test func dqKernelTiles() throws {
    let wide = try #require(HopperBackwardDQKey(headDim: 256, dtype: .bfloat16, mask: .causal))
    #expect(wide.blockN == 32)
    #expect(wide.sharedMemoryBytes == 1024 + 128 * 1024 + 64 * 1024 + 72)
    let narrow = try #require(HopperBackwardDQKey(headDim: 128, dtype: .float16, mask: .none))
    #expect(narrow.blockN == 64)
  }

  /// Every variant compiles for sm_90a cleanly (`expectCleanHopperCompile`).
  @Test(
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func everyVariantCompilesWithoutSpills() throws {
    for key in HopperBackwardKey.allVariants {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
    for key in HopperBackwardDQKey.allVariants {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }
}
