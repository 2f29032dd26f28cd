import FlashAttentionCPU
import FlashAttentionCore
import Foundation
import Testing

@Suite("CPU features and backend setup")
struct CPUFeaturesTests {
  @Test("the probe reports what /proc/cpuinfo says about AVX2 and FMA")
  func probeAgreesWithKernel() throws {
    let features = CPUFeatures.current
    #expect(features.logicalCores >= 1)
    #if arch(x86_64) && os(Linux)
      let cpuinfo = try #require(CPUInfoFlags.read(), "cannot read /proc/cpuinfo")
      for flag in ["avx2", "fma", "f16c", "bmi2"] {
        #expect(features.available.contains(flag) == cpuinfo.contains(flag), "\(flag): \(features.available)")
      }
      #expect(
        features.hasAVX512 == ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(cpuinfo.contains))
      #expect(CPUInstructionSet.supported.contains(.avx512) == features.hasAVX512)
      // The kernels run here (the test suite itself needs them), so nothing required is missing.
      #expect(features.missingRequired.isEmpty, "missing \(features.missingRequired)")
    #endif
  }

  @Test("thread counts below 1 are refused with a named argument")
  func invalidThreads() {
    #expect(throws: FlashAttentionError.invalidArgument(name: "threads", value: "0", reason: "must be from 1 to 1024")) {
      try CPUBackend(threads: 0)
    }
  }

  @Test("the FMA probe measures a positive, finite rate")
  func fmaProbe() {
    let rate = FMAPeakProbe.measure(threads: 1)
    #expect(rate.isFinite && rate > 1, "\(rate) GFLOP/s")
  }
}

/// The `flags` line of /proc/cpuinfo, as a set.
enum CPUInfoFlags {
  static func read() -> Set<String>? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
    return Set(line.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
  }
}
