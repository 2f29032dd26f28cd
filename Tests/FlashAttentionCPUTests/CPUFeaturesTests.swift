@testable import FlashAttentionCPU
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

@Suite("CPU thread count")
struct CPUThreadCountTests {
  /// Issue #16, rows 6 and 12: huge values used to crash, 0, -1, abc and 2.5 were ignored.
  @Test("FLASH_ATTENTION_CPU_THREADS: a whole number from 1 to the maximum, else a typed error naming it")
  func environment() throws {
    #expect(try CPUThreadCount.resolve(nil, environment: nil, cores: 6) == 6)
    #expect(try CPUThreadCount.resolve(nil, environment: "", cores: 6) == 6)
    #expect(try CPUThreadCount.resolve(nil, environment: " 3 ", cores: 6) == 3)
    #expect(try CPUThreadCount.resolve(nil, environment: "1024", cores: 6) == 1024)
    #expect(try CPUThreadCount.resolve(2, environment: "abc", cores: 6) == 2)
    #expect(try CPUThreadCount.resolve(nil, environment: nil, cores: 5000) == CPUThreadCount.maximum)
    for text in ["0", "-1", "abc", "2.5", "1e3", "1025", "9223372036854775807", "99999999999999999999"] {
      #expect {
        try CPUThreadCount.resolve(nil, environment: text, cores: 6)
      } throws: { error in
        guard case .invalidArgument(name: "FLASH_ATTENTION_CPU_THREADS", value: text, _) = error as? FlashAttentionError else {
          return false
        }
        return true
      }
    }
    for count in [0, -1, 1025, Int.max] {
      #expect(throws: FlashAttentionError.self) { try CPUThreadCount.resolve(count, environment: nil, cores: 6) }
    }
  }
}
