import FlashAttentionCore
import Synchronization

/// Scratch device memory for the calls on one device (the backward's LSE2, D and dQ
/// accumulator, the staging copies of host tensors), allocated and freed in the order of the
/// stream that uses it, so a call neither allocates with `cuMemAlloc` nor waits for its stream.
///
/// It is a memory pool of the library's own (`cuMemPoolCreate`), not the device's default one,
/// so other libraries in the process keep their settings; freed memory stays in the pool across
/// synchronizations (release threshold: unlimited) and serves the next call, on any stream, once
/// the driver knows the free has happened. Drivers without pools get plain `cuMemAlloc`, and a
/// free then waits for its stream first.
final class DeviceScratchPool: Sendable {
  let device: CUDADevice
  /// The `CUmemoryPool`, or nil where the driver or the device has no memory pools.
  nonisolated(unsafe) private let pool: CUhandle?

  private static let pools = Mutex<[Int: DeviceScratchPool]>([:])

  /// The pool of `device`, made once per process.
  static func shared(for device: CUDADevice) throws(FlashAttentionError) -> DeviceScratchPool {
    let result: Result<DeviceScratchPool, FlashAttentionError> = pools.withLock { pools in
      if let pool = pools[device.ordinal] { return .success(pool) }
      do throws(FlashAttentionError) {
        let pool = try DeviceScratchPool(device: device)
        pools[device.ordinal] = pool
        return .success(pool)
      } catch {
        return .failure(error)
      }
    }
    return try result.get()
  }

  private init(device: CUDADevice) throws(FlashAttentionError) {
    self.device = device
    let api = device.api
    var supported: Int32 = 0
    // CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED
    guard let create = api.cuMemPoolCreate, let setAttribute = api.cuMemPoolSetAttribute,
      api.cuMemAllocFromPoolAsync != nil, api.cuMemFreeAsync != nil,
      api.cuDeviceGetAttribute(&supported, 115, Int32(device.ordinal)) == 0, supported != 0
    else {
      pool = nil
      return
    }
    try device.makeCurrent()
    // CUmemPoolProps (88 bytes in CUDA 11-13; zeroed room to spare): allocType PINNED (1) at 0,
    // handleTypes NONE at 4, location {type DEVICE (1), id} at 8 and 12, the rest reserved or 0.
    var properties = [UInt8](repeating: 0, count: 256)
    properties.withUnsafeMutableBytes { raw in
      raw.storeBytes(of: Int32(1), toByteOffset: 0, as: Int32.self)
      raw.storeBytes(of: Int32(1), toByteOffset: 8, as: Int32.self)
      raw.storeBytes(of: Int32(device.ordinal), toByteOffset: 12, as: Int32.self)
    }
    var handle: CUhandle?
    let status = properties.withUnsafeBytes { raw in
      raw.baseAddress.map { create(&handle, $0) } ?? CUDAResult.invalidValue.rawValue
    }
    try api.check(status, "cuMemPoolCreate(device \(device.ordinal))")
    // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: keep freed memory for the next calls.
    var threshold = UInt64.max
    try api.check(setAttribute(handle, 4, &threshold), "cuMemPoolSetAttribute(release threshold)")
    pool = handle
  }

  /// Whether allocations are stream-ordered (false: plain `cuMemAlloc`, frees wait).
  var isStreamOrdered: Bool { pool != nil }

  /// `byteCount` bytes (at least 1, 256-byte aligned), usable by work queued on `stream` after
  /// this call.
  /// - Throws: `.outOfMemory` when the device cannot provide them.
  func allocate(_ byteCount: Int, on stream: CUDAStream) throws(FlashAttentionError) -> UInt64 {
    let api = device.api
    try device.makeCurrent()
    var address: CUdeviceptr = 0
    let status: Int32
    if let pool, let allocate = api.cuMemAllocFromPoolAsync {
      status = allocate(&address, max(byteCount, 1), pool, stream.handle)
    } else {
      status = api.cuMemAlloc(&address, max(byteCount, 1))
    }
    if status == CUDAResult.outOfMemory.rawValue {
      throw .outOfMemory(bytes: byteCount, context: "scratch on \(device.name)")
    }
    try api.check(status, "scratch allocation (\(byteCount) bytes)")
    return address
  }

  /// Returns `address` to the pool once the work queued on `stream` so far has run.
  func free(_ address: UInt64, on stream: CUDAStream) throws(FlashAttentionError) {
    let api = device.api
    try device.makeCurrent()
    if pool != nil, let free = api.cuMemFreeAsync {
      try api.check(free(address, stream.handle), "cuMemFreeAsync")
    } else {
      try stream.synchronize()
      try api.check(api.cuMemFree(address), "cuMemFree_v2")
    }
  }

  /// Runs `body` with `byteCount` bytes of scratch and frees them after the work `body` queued
  /// on `stream` (also when `body` throws, reporting `body`'s error).
  func withScratch<Result>(
    _ byteCount: Int, on stream: CUDAStream, _ body: (UInt64) throws(FlashAttentionError) -> Result
  ) throws(FlashAttentionError) -> Result {
    let address = try allocate(byteCount, on: stream)
    let outcome: Swift.Result<Result, FlashAttentionError>
    do throws(FlashAttentionError) {
      outcome = .success(try body(address))
    } catch {
      outcome = .failure(error)
    }
    do throws(FlashAttentionError) {
      try free(address, on: stream)
    } catch {
      if case .success = outcome { throw error }
    }
    return try outcome.get()
  }
}

/// Device memory a caller lends to a backward call for its scratch (from another framework's
/// allocator, say) instead of the library's pool. It must hold
/// `CUDABackend.backwardWorkspaceBytes(for:)` bytes at a 256-byte aligned address on the
/// backend's device, and stay valid until the stream has run the call.
package struct CUDAWorkspace: Sendable, Hashable {
  /// The `CUdeviceptr`.
  package var address: UInt64
  package var byteCount: Int

  package init(address: UInt64, byteCount: Int) {
    self.address = address
    self.byteCount = byteCount
  }
}
