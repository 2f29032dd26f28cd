import FlashAttentionCore
import _CPUFeatureShims

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Which compiled copy of the CPU kernels runs: the same C kernel body built for x86-64-v3
/// (AVX2 + FMA) and for x86-64-v4 (AVX-512, whose 32 zmm registers hold a 6 × 32 micro-kernel;
/// about 2× the FLOP/s where the CPU has two 512-bit FMA pipes, docs/perf-notes/cpu.md item 15).
public enum CPUInstructionSet: String, Sendable, CaseIterable, CustomStringConvertible {
  /// x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE.
  case avx2
  /// x86-64-v4: x86-64-v3 plus AVX-512 F, BW, CD, DQ, VL.
  case avx512

  /// The instruction-set level the kernels are compiled for (as a target attribute).
  public var level: String {
    switch self {
    case .avx2: "x86-64-v3"
    case .avx512: "x86-64-v4"
    }
  }

  public var description: String { "\(rawValue) (\(level))" }

  /// The instruction sets this CPU can run: those whose kernel table `cpuid` approves (empty
  /// when the CPU lacks even x86-64-v3, and off x86-64).
  public static var supported: [CPUInstructionSet] {
    allCases.filter { CPUKernels($0) != nil }
  }

  /// What `CPUBackend` uses by default: `FLASH_ATTENTION_CPU_ISA` when it names a supported
  /// instruction set, else the widest this CPU runs (`.avx2` on a CPU that runs neither, where
  /// `CPUBackend` refuses anyway).
  public static var preferred: CPUInstructionSet {
    (try? resolve(nil)) ?? (supported.contains(.avx512) ? .avx512 : .avx2)
  }

  /// The instruction set to run: `requested`, else `FLASH_ATTENTION_CPU_ISA` (`avx2` or
  /// `avx512`), else the widest this CPU supports.
  ///
  /// - Throws: `.invalidArgument` for an unknown `FLASH_ATTENTION_CPU_ISA`;
  ///   `.backendUnavailable` when the CPU cannot run the one asked for, or neither build.
  package static func resolve(_ requested: CPUInstructionSet?) throws(FlashAttentionError) -> CPUInstructionSet {
    let variable = getenv("FLASH_ATTENTION_CPU_ISA").map { String(cString: $0) }
    return try resolve(requested, environment: variable, supported: supported)
  }

  /// `resolve(_:)` with the environment variable's value and the supported sets passed in.
  static func resolve(
    _ requested: CPUInstructionSet?, environment: String?, supported available: [CPUInstructionSet]
  ) throws(FlashAttentionError) -> CPUInstructionSet {
    if available.isEmpty {
      throw .backendUnavailable(backend: "cpu", reason: "this CPU lacks x86-64-v3 (AVX2, FMA), the least the kernels need")
    }
    var choice = requested
    // Unset and empty (or blank) mean the same: the default.
    if choice == nil, let name = environment?.trimmedOfWhitespace, !name.isEmpty {
      guard let parsed = CPUInstructionSet(rawValue: name.lowercased()) else {
        throw .invalidArgument(name: "FLASH_ATTENTION_CPU_ISA", value: name, reason: "must be avx2 or avx512")
      }
      choice = parsed
    }
    guard let choice else { return available.contains(.avx512) ? .avx512 : .avx2 }
    if !available.contains(choice) {
      throw .backendUnavailable(
        backend: "cpu", reason: "\(choice) kernels were asked for, but this CPU lacks \(choice.level)")
    }
    return choice
  }
}
