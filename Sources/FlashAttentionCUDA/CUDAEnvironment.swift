import FlashAttentionCore

/// What the CUDA backend found on this machine: the answer behind `flash-attention info`.
package struct CUDAEnvironmentReport: Sendable {
  package struct Device: Sendable {
    package var ordinal: Int
    package var name: String
    package var computeCapability: (major: Int, minor: Int)
    package var multiprocessors: Int
    package var memoryBytes: Int
  }

  /// Path of the loaded `libcuda`, or nil.
  package var driverLibrary: String?
  /// `cuDriverGetVersion`, e.g. 13000.
  package var driverVersion: Int?
  /// Path of the loaded NVRTC, or nil.
  package var nvrtcLibrary: String?
  package var nvrtcVersion: (major: Int, minor: Int)?
  package var devices: [Device]
  /// Kernel cache directory, or nil when disabled.
  package var cacheDirectory: String?
  /// One line per missing piece, each saying how to get it; empty when the backend is usable.
  package var problems: [String]

  package var isUsable: Bool { problems.isEmpty && !devices.isEmpty }

  /// Loads the driver and NVRTC (once per process) and lists the devices; never throws, every
  /// failure becomes a line in `problems`.
  package static func probe() -> CUDAEnvironmentReport {
    var report = CUDAEnvironmentReport(
      driverLibrary: nil, driverVersion: nil, nvrtcLibrary: nil, nvrtcVersion: nil, devices: [],
      cacheDirectory: KernelDiskCache.configuredDirectory(), problems: [])
    switch CUDADriverAPI.shared {
    case let .success(api):
      report.driverLibrary = api.library.path
      var version: Int32 = 0
      if api.cuDriverGetVersion(&version) == 0 { report.driverVersion = Int(version) }
      var count: Int32 = 0
      let status = api.cuDeviceGetCount(&count)
      if status != 0 {
        report.problems.append("cuDeviceGetCount failed: \(api.errorName(status))")
      } else if count == 0 {
        report.problems.append("the NVIDIA driver is loaded but reports no CUDA device")
      }
      for ordinal in 0..<Int(max(count, 0)) {
        do throws(FlashAttentionError) {
          let device = try CUDADevice.open(ordinal: ordinal)
          report.devices.append(Device(
            ordinal: ordinal, name: device.name, computeCapability: device.computeCapability,
            multiprocessors: device.multiprocessors, memoryBytes: device.totalMemoryBytes))
          if device.computeCapability.major < 8 {
            report.problems.append(
              "device \(ordinal) (\(device.name)) has compute capability \(device.computeCapability.major)."
                + "\(device.computeCapability.minor); the kernels need 8.0 (Ampere) or newer")
          }
        } catch {
          report.problems.append("device \(ordinal): \(error)")
        }
      }
    case let .failure(failure):
      report.problems.append(failure.message)
    }
    switch NVRTCAPI.shared {
    case let .success(api):
      report.nvrtcLibrary = api.library.path
      report.nvrtcVersion = api.version
    case let .failure(failure):
      report.problems.append(failure.message)
    }
    return report
  }
}
