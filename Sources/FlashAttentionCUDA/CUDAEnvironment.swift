/// What the CUDA backend found on this machine: the answer behind `flash-attention info`.
/// (Skeleton: the CUDA backend issue implements the probe.)
public struct CUDAEnvironmentReport: Sendable {
  public struct Device: Sendable {
    public var ordinal: Int
    public var name: String
    public var computeCapability: (major: Int, minor: Int)
    public var multiprocessors: Int
    public var memoryBytes: Int
  }

  /// Path of the loaded `libcuda`, or nil.
  public var driverLibrary: String?
  /// `cuDriverGetVersion`, e.g. 13000.
  public var driverVersion: Int?
  /// Path of the loaded NVRTC, or nil.
  public var nvrtcLibrary: String?
  public var nvrtcVersion: (major: Int, minor: Int)?
  public var devices: [Device]
  /// Kernel cache directory, or nil when disabled.
  public var cacheDirectory: String?
  /// One line per missing piece, each saying how to get it; empty when the backend is usable.
  public var problems: [String]

  public var isUsable: Bool { problems.isEmpty && !devices.isEmpty }

  public static func probe() -> CUDAEnvironmentReport {
    CUDAEnvironmentReport(
      driverLibrary: nil, driverVersion: nil, nvrtcLibrary: nil, nvrtcVersion: nil, devices: [],
      cacheDirectory: nil, problems: ["the CUDA backend is not built yet"])
  }
}
