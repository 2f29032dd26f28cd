import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// The Hopper kernel's key and its tile table; GPU numerics run on the device.
@Suite struct HopperForwardTests {
  @Test func keysCoverTheRequiredHeadDimsAndDtypes() {
    for (d, dv) in [(64, 64), (96, 96), (128, 128), (192, 128), (256, 256)] {
      for dtype in [DType.float16, .bfloat16] {
        let key = HopperForwardKey(headDim: d, headDimV: dv, dtype: dtype, mask: .causal, softcap: false)
        #expect(key != nil, "no Hopper key for d=\(d) dv=\(dv) \(dtype)")
        if let key {
          #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
          #expect(key.program.source.contains("#define FA_HEAD_DIM \(d)\n"))
        }
      }
    }
    #expect(HopperForwardKey(headDim: 128, headDimV: 128, dtype: .float32, mask: .none, softcap: false) == nil)
    #expect(HopperForwardKey(headDim: 80, headDimV: 80, dtype: .bfloat16, mask: .none, softcap: false) == nil)
  }

  /// Three consumers (192 rows, 512 threads) only where they were measured faster: d = 64
  /// without softcap, off the persistent grid, unmasked from N = 1024 (run 14) or masked from
  /// N = 4096 (2026-12-06).
  @Test func threeConsumersOnlyForLongD64() throws {
    let long = try #require(HopperForwardKey(headDim: 64, headDimV: 64, dtype: .bfloat16, mask: .causal, softcap: false))
    #expect(long.consumers == 3 && long.blockM == 192 && long.threads == 512 && !long.pingPong)
    #expect(long.program.source.contains("#define FA_CONSUMERS 3\n"))
    for (seqlenK, consumers) in [(2048, 2), (4095, 2), (4096, 3)] {
      let key = try #require(
        HopperForwardKey(
          headDim: 64, headDimV: 64, dtype: .bfloat16, mask: .causal, softcap: false, persistent: true, seqlenK: seqlenK))
      #expect(key.consumers == consumers && key.blockM == 64 * consumers, "causal N = \(seqlenK)")
    }
    // Unmasked on the persistent grid: from N = 1024 on (a 192-row tile wastes too much below).
    for (seqlenK, consumers) in [(512, 2), (1023, 2), (1024, 3), (4096, 3)] {
      let key = HopperForwardKey(
        headDim: 64, headDimV: 64, dtype: .float16, mask: .none, softcap: false, persistent: true, seqlenK: seqlenK)
      #expect(key?.consumers == consumers, "N = \(seqlenK)")
    }
    for key in HopperForwardKey.allVariants where key.consumers == 3 {
      #expect(key.headDim == 64 && !key.softcap, "\(key)")
    }
  }

  @Test func variantsAreDistinctPrograms() {
    let variants = HopperForwardKey.allVariants
    // One per head dims, dtype, mask and softcap, plus the persistent-grid tiles of d = 64 and
    // d = 128 unmasked, and of d = 64 masked without softcap (three consumers off that grid);
    // fp8: 3 head dims x 2 outputs x 3 masks x softcap.
    #expect(variants.count == 5 * 2 * 3 * 2 + 2 * 2 * 2 + 2 * 2 + 3 * 2 * 3 * 2)
    #expect(Set(variants.map(\.program)).count == variants.count)
  }
}

/// Compiles Hopper variants with NVRTC (no GPU needed) and checks the resource report: no spills,
/// the register cap of a 384-thread block (setmaxnreg rebalances later), no serialized wgmma.
@Suite struct HopperForwardCompileTests {
  @Test func heaviestVariantsCompileForSM90aWithoutSpills() throws {
    guard (try? KernelCompiler.nvrtcVersion()) != nil else {
      print("NVRTC not found: Hopper compile check skipped (pip install nvidia-cuda-nvrtc)")
      return
    }
    // The variants with the most live registers: softcap on, masked (every head dim) and the
    // wide unmasked d=128 tile. benchmarks/hopper/sass_check.py checks all 60 offline.
    var keys: [HopperForwardKey?] = HopperForwardKey.supportedHeadDims.map {
      HopperForwardKey(headDim: $0.0, headDimV: $0.1, dtype: .bfloat16, mask: .causal, softcap: true)
    }
    keys.append(HopperForwardKey(headDim: 128, headDimV: 128, dtype: .bfloat16, mask: .none, softcap: true))
    // Three consumer warpgroups at 160 registers each: the tightest budget per thread.
    keys.append(HopperForwardKey(headDim: 64, headDimV: 64, dtype: .bfloat16, mask: .window, softcap: false))
    for candidate in keys {
      let key = try #require(candidate)
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }
}
