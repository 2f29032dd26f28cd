@testable import FlashAttentionCPU
import FlashAttentionCore
import Foundation
import Testing

/// The choice between the two compiled copies of the kernels (x86-64-v3 and x86-64-v4); each is
/// checked against the float64 reference in `CPUVerificationTests`.
@Suite("CPU kernels per instruction set")
struct InstructionSetTests {
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
