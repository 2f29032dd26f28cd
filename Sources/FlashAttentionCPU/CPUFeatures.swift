/// The SIMD features of the CPU running this process, and whether the kernels can run.
/// (Skeleton: the CPU kernels issue implements the cpuid probe.)
public struct CPUFeatures: Sendable {
  /// Feature names found, e.g. `["avx2", "fma", "avx512f"]`.
  public var available: [String]
  /// Features the CPU kernels were compiled for but this CPU lacks; non-empty means unusable.
  public var missingRequired: [String]
  public var logicalCores: Int

  public static var current: CPUFeatures {
    CPUFeatures(available: [], missingRequired: [], logicalCores: 1)
  }
}
