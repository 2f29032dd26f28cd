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
    #expect(variants.count == 3 * 2 * 3)
    #expect(Set(variants.map(\.program)).count == variants.count)
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

  /// The kernel's A/B choice per call: supported head dims and dtypes, no softcap, no
  /// deterministic mode, sm_90a only.
  @Test func coverageRules() {
    #expect(HopperBackward.coverage(headDim: 128, headDimV: 128, dtype: .bfloat16, softcap: 0, deterministic: false, arch: "sm_90a") == nil)
    #expect(HopperBackward.coverage(headDim: 64, headDimV: 64, dtype: .float16, softcap: 0, deterministic: false, arch: "sm_90a") == nil)
    #expect(HopperBackward.coverage(headDim: 128, headDimV: 128, dtype: .bfloat16, softcap: 0, deterministic: false, arch: "sm_80") != nil)
    #expect(HopperBackward.coverage(headDim: 128, headDimV: 128, dtype: .bfloat16, softcap: 30, deterministic: false, arch: "sm_90a") != nil)
    #expect(HopperBackward.coverage(headDim: 128, headDimV: 128, dtype: .bfloat16, softcap: 0, deterministic: true, arch: "sm_90a") != nil)
    #expect(HopperBackward.coverage(headDim: 192, headDimV: 128, dtype: .bfloat16, softcap: 0, deterministic: false, arch: "sm_90a") != nil)
    #expect(HopperBackward.coverage(headDim: 256, headDimV: 256, dtype: .bfloat16, softcap: 0, deterministic: false, arch: "sm_90a") == nil)
    #expect(HopperBackward.coverage(headDim: 96, headDimV: 96, dtype: .bfloat16, softcap: 0, deterministic: false, arch: "sm_90a") != nil)
  }

  /// Every variant compiles for sm_90a cleanly (`expectCleanHopperCompile`).
  @Test(
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func everyVariantCompilesWithoutSpills() throws {
    for key in HopperBackwardKey.allVariants {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }
}
