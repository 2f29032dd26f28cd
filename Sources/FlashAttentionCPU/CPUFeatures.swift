import _CPUFeatureShims

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The SIMD features of the CPU running this process, and whether the kernels can run.
///
/// The probe (`cpuid`, `xgetbv`) lives in the C target `_CPUFeatureShims`, which is compiled for
/// the baseline x86-64 ISA: asking never executes an instruction the CPU may lack.
package struct CPUFeatures: Sendable {
  /// Feature names found, e.g. `["avx2", "fma", "avx512f"]`.
  package var available: [String]
  /// Features the CPU kernels were compiled for but this CPU lacks; non-empty means unusable.
  package var missingRequired: [String]
  package var logicalCores: Int

  /// The least instruction-set level the kernels run on (their AVX2 build's target).
  package static let requiredLevel = "x86-64-v3"

  package init(available: [String], missingRequired: [String], logicalCores: Int) {
    self.available = available
    self.missingRequired = missingRequired
    self.logicalCores = logicalCores
  }

  /// Probes the running CPU (C, `cpuid`; safe on any x86-64 CPU).
  package static var current: CPUFeatures {
    let bits = fa_cpu_feature_bits()
    let isX86 = bits & FA_CPU_X86 != 0
    var available: [String] = []
    var missing: [String] = []
    for (bit, name, required) in featureTable {
      if bits & bit != 0 {
        available.append(name)
      } else if required && isX86 {
        missing.append(name)
      }
    }
    return CPUFeatures(available: available, missingRequired: missing, logicalCores: onlineCores())
  }

  /// Whether the CPU has AVX-512 (F, BW, CD, DQ, VL) with OS support for zmm state.
  package var hasAVX512: Bool {
    ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(available.contains)
  }

  /// `(bit, name, required by x86-64-v3)`.
  private static let featureTable: [(UInt32, String, Bool)] = [
    (FA_CPU_SSE42, "sse4.2", true),
    (FA_CPU_AVX, "avx", true),
    (FA_CPU_AVX2, "avx2", true),
    (FA_CPU_FMA, "fma", true),
    (FA_CPU_F16C, "f16c", true),
    (FA_CPU_BMI1, "bmi1", true),
    (FA_CPU_BMI2, "bmi2", true),
    (FA_CPU_LZCNT, "lzcnt", true),
    (FA_CPU_MOVBE, "movbe", true),
    (FA_CPU_AVX512F, "avx512f", false),
    (FA_CPU_AVX512BW, "avx512bw", false),
    (FA_CPU_AVX512CD, "avx512cd", false),
    (FA_CPU_AVX512DQ, "avx512dq", false),
    (FA_CPU_AVX512VL, "avx512vl", false),
  ]

  /// Cores this process may run on (the affinity mask, which containers narrow), at least 1.
  private static func onlineCores() -> Int {
    let count = Int(fa_cpu_affinity_count())
    if count > 0 { return count }
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
  }
}
