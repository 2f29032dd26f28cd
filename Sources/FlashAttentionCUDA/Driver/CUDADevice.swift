import FlashAttentionCore
import Synchronization

/// One GPU and its primary context: properties read once, and the context made current on the
/// calling thread before each sequence of driver calls (driver contexts are per thread).
package final class CUDADevice: Sendable {
  package let ordinal: Int
  package let name: String
  package let computeCapability: (major: Int, minor: Int)
  package let multiprocessors: Int
  package let totalMemoryBytes: Int
  /// The opt-in limit of shared memory per block (what a kernel may ask for after raising its
  /// dynamic limit).
  package let sharedMemoryPerBlockOptIn: Int
  package let l2CacheBytes: Int
  /// The NVRTC target for this device: `sm_90a` on Hopper (for wgmma and setmaxnreg),
  /// otherwise `sm_XY`.
  package let arch: String

  let api: CUDADriverAPI
  nonisolated(unsafe) let context: CUhandle

  private init(ordinal: Int, api: CUDADriverAPI) throws(FlashAttentionError) {
    var count: Int32 = 0
    try api.check(api.cuDeviceGetCount(&count), "cuDeviceGetCount")
    guard ordinal >= 0, ordinal < Int(count) else {
      throw .backendUnavailable(
        backend: "cuda", reason: "device \(ordinal) does not exist (\(count) CUDA device(s) found)")
    }
    var device: Int32 = 0
    try api.check(api.cuDeviceGet(&device, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
    var nameBuffer = [CChar](repeating: 0, count: 256)
    try api.check(api.cuDeviceGetName(&nameBuffer, 255, device), "cuDeviceGetName")
    func attribute(_ id: Int32, _ label: String) throws(FlashAttentionError) -> Int {
      var value: Int32 = 0
      try api.check(api.cuDeviceGetAttribute(&value, id, device), "cuDeviceGetAttribute(\(label))")
      return Int(value)
    }
    let major = try attribute(75, "COMPUTE_CAPABILITY_MAJOR")
    let minor = try attribute(76, "COMPUTE_CAPABILITY_MINOR")
    var total = 0
    try api.check(api.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem_v2")
    var context: CUhandle?
    try api.check(api.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain(\(ordinal))")
    guard let context else { throw .cuda(message: "cuDevicePrimaryCtxRetain returned no context") }
    self.ordinal = ordinal
    self.api = api
    self.context = context
    self.name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    self.computeCapability = (major, minor)
    self.multiprocessors = try attribute(16, "MULTIPROCESSOR_COUNT")
    self.totalMemoryBytes = total
    self.sharedMemoryPerBlockOptIn = try attribute(97, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN")
    self.l2CacheBytes = try attribute(38, "L2_CACHE_SIZE")
    self.arch = CUDADevice.arch(major: major, minor: minor)
  }

  /// The NVRTC architecture name for a compute capability (`9.0` → `sm_90a`).
  package static func arch(major: Int, minor: Int) -> String {
    major == 9 && minor == 0 ? "sm_90a" : "sm_\(major)\(minor)"
  }

  private static let opened = Mutex<[Int: CUDADevice]>([:])

  /// The device with this ordinal, opened once per process (its primary context retained).
  /// - Throws: `.backendUnavailable` when there is no driver or no such device.
  package static func open(ordinal: Int = 0) throws(FlashAttentionError) -> CUDADevice {
    let api = try CUDADriverAPI.loaded()
    let result: Result<CUDADevice, FlashAttentionError> = opened.withLock { devices in
      if let device = devices[ordinal] { return .success(device) }
      do throws(FlashAttentionError) {
        let device = try CUDADevice(ordinal: ordinal, api: api)
        devices[ordinal] = device
        return .success(device)
      } catch {
        return .failure(error)
      }
    }
    return try result.get()
  }

  /// Makes this device's primary context current on the calling thread.
  package func makeCurrent() throws(FlashAttentionError) {
    try api.check(api.cuCtxSetCurrent(context), "cuCtxSetCurrent(device \(ordinal))")
  }

  /// Free and total device memory (`cuMemGetInfo_v2`).
  package func memoryInfo() throws(FlashAttentionError) -> (free: Int, total: Int) {
    try makeCurrent()
    var free = 0
    var total = 0
    try api.check(api.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2")
    return (free, total)
  }

  /// Waits for all work on this device's context.
  package func synchronize() throws(FlashAttentionError) {
    try makeCurrent()
    try api.check(api.cuCtxSynchronize(), "cuCtxSynchronize")
  }

  /// Encodes a TMA descriptor (`cuTensorMapEncodeTiled`) into `tensorMap` (64-byte aligned,
  /// 128 bytes). The arguments are the driver's, in its order and units.
  package func encodeTensorMapTiled(
    _ tensorMap: UnsafeMutableRawPointer, dataType: Int32, rank: Int, globalAddress: UInt64,
    globalDims: [UInt64], globalStrides: [UInt64], boxDims: [UInt32], elementStrides: [UInt32],
    interleave: Int32 = 0, swizzle: Int32, l2Promotion: Int32, oobFill: Int32 = 0
  ) throws(FlashAttentionError) {
    guard let encode = api.cuTensorMapEncodeTiled else {
      throw .unsupported(backend: "cuda:\(ordinal)", feature: "TMA (driver lacks cuTensorMapEncodeTiled)")
    }
    let status = encode(
      tensorMap, dataType, UInt32(rank), UnsafeMutableRawPointer(bitPattern: UInt(globalAddress)),
      globalDims, globalStrides, boxDims, elementStrides, interleave, swizzle, l2Promotion, oobFill)
    try api.check(status, "cuTensorMapEncodeTiled(dims \(globalDims), box \(boxDims))")
  }
}
