@testable import FlashAttentionCPU
import FlashAttentionCore
import Foundation
import Testing

/// Both compiled copies of the kernels (x86-64-v3 and x86-64-v4) against the float64 reference,
/// and the choice between them.
@Suite("CPU kernels per instruction set")
struct InstructionSetTests {
  /// Odd shapes, masks that cut tiles, softcap, GQA, half precisions and d ≠ d_v: enough to take
  /// every product through both the 6 × 32 and the 6 × 16 blocks of the AVX-512 build.
  static let cases = [
    AttentionCase(seqlenQ: 7, seqlenK: 17, headDim: 7, headDimV: 9),
    AttentionCase(seqlenQ: 129, seqlenK: 129, headsQ: 4, headsKV: 2, headDim: 48, options: AttentionOptions(causal: true)),
    AttentionCase(seqlenQ: 200, seqlenK: 130, headDim: 80, headDimV: 32, options: AttentionOptions(causal: true)),
    AttentionCase(
      seqlenQ: 257, seqlenK: 300, headsQ: 2, headsKV: 1, headDim: 128,
      options: AttentionOptions(window: SlidingWindow(left: 40, right: 7), softcap: 5)),
    AttentionCase(seqlenQ: 130, seqlenK: 200, headsQ: 8, headsKV: 8, headDim: 128),  // V in column panels
    AttentionCase(seqlenQ: 97, seqlenK: 193, headsQ: 3, headsKV: 1, headDim: 64, dtype: .bfloat16),
    AttentionCase(seqlenQ: 1000, seqlenK: 17, headsQ: 1, headsKV: 1, headDim: 256, dtype: .float16),
  ]

  @Test("the AVX2 build matches the reference", arguments: cases)
  func avx2(_ c: AttentionCase) throws {
    var c = c
    c.instructionSet = .avx2
    try expectMatchesReference(c)
  }

  @Test(
    "the AVX-512 build matches the reference", .enabled(if: CPUInstructionSet.supported.contains(.avx512), "this CPU lacks AVX-512"),
    arguments: cases)
  func avx512(_ c: AttentionCase) throws {
    var c = c
    c.instructionSet = .avx512
    try expectMatchesReference(c)
  }

  @Test("the default is the widest supported set; FLASH_ATTENTION_CPU_ISA is checked")
  func choice() throws {
    #expect(try CPUInstructionSet.resolve(nil, environment: nil, supported: [.avx2, .avx512]) == .avx512)
    #expect(try CPUInstructionSet.resolve(nil, environment: nil, supported: [.avx2]) == .avx2)
    #expect(try CPUInstructionSet.resolve(nil, environment: "AVX2", supported: [.avx2, .avx512]) == .avx2)
    #expect(try CPUInstructionSet.resolve(.avx2, environment: "avx512", supported: [.avx2, .avx512]) == .avx2)
    #expect(
      throws: FlashAttentionError.invalidArgument(
        name: "FLASH_ATTENTION_CPU_ISA", value: "sse2", reason: "must be avx2 or avx512")
    ) {
      try CPUInstructionSet.resolve(nil, environment: "sse2", supported: [.avx2, .avx512])
    }
    #expect {
      try CPUInstructionSet.resolve(nil, environment: "avx512", supported: [.avx2])
    } throws: { error in
      guard case .backendUnavailable(backend: "cpu", let reason) = error as? FlashAttentionError else { return false }
      return reason.contains("x86-64-v4")
    }
    #expect(try CPUInstructionSet.resolve(nil, environment: " ", supported: [.avx2, .avx512]) == .avx512)
    #expect {
      try CPUInstructionSet.resolve(.avx2, environment: nil, supported: [])
    } throws: { error in
      guard case .backendUnavailable(backend: "cpu", let reason) = error as? FlashAttentionError else { return false }
      return reason.contains("x86-64-v3")
    }
    let backend = try CPUBackend(instructionSet: .avx2)
    #expect(backend.instructionSet == .avx2)
  }

  @Test("each table is the build it names, and is handed out only where the CPU runs it")
  func tables() throws {
    for instructionSet in CPUInstructionSet.allCases {
      let kernels = CPUKernels(instructionSet)
      #expect((kernels != nil) == CPUInstructionSet.supported.contains(instructionSet))
      guard let table = kernels?.table.pointee else { continue }
      #expect(String(cString: table.name) == instructionSet.rawValue)
      #expect(table.lanes == (instructionSet == .avx512 ? 16 : 8))
    }
  }

  /// SwiftPM refuses unsafe flags in any package resolved by version: the library could not be a
  /// dependency (issue #13). scripts/check-consumer-package.sh proves it end to end.
  @Test("Package.swift uses no unsafe build flags")
  func noUnsafeFlags() throws {
    let manifest = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../Package.swift").standardizedFileURL
    let text = try String(contentsOf: manifest, encoding: .utf8)
    #expect(!text.contains("unsafe" + "Flags"))
  }
}
