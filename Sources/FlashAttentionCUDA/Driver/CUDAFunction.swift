import FlashAttentionCore
import Synchronization

/// A loaded module (`cuModuleLoadData` of a CUBIN) and one kernel in it, ready to launch.
package final class CUDAFunction: @unchecked Sendable {
  package let device: CUDADevice
  package let entry: String
  let module: CUhandle?
  let handle: CUhandle?
  private let dynamicSharedMemoryLimit = Atomic<Int>(48 * 1024)

  /// Loads `cubin` into `device`'s primary context and looks up `entry`.
  init(cubin: [UInt8], entry: String, device: CUDADevice) throws(FlashAttentionError) {
    self.device = device
    self.entry = entry
    let api = device.api
    try device.makeCurrent()
    var module: CUhandle?
    let status = cubin.withUnsafeBytes { api.cuModuleLoadData(&module, $0.baseAddress!) }
    try api.check(status, "cuModuleLoadData(\(entry), \(cubin.count) bytes)")
    var function: CUhandle?
    let lookup = entry.withCString { api.cuModuleGetFunction(&function, module, $0) }
    if lookup != 0 {
      _ = api.cuModuleUnload(module)
      try api.check(lookup, "cuModuleGetFunction(\(entry))")
    }
    self.module = module
    self.handle = function
  }

  deinit {
    _ = try? device.makeCurrent()
    _ = device.api.cuModuleUnload(module)
  }

  /// Raises the kernel's dynamic shared-memory limit (needed above 48 KiB).
  package func setMaxDynamicSharedMemory(_ bytes: Int) throws(FlashAttentionError) {
    try device.makeCurrent()
    // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    try device.api.check(
      device.api.cuFuncSetAttribute(handle, 8, Int32(clamping: bytes)), "cuFuncSetAttribute(\(entry), smem \(bytes))")
    dynamicSharedMemoryLimit.store(bytes, ordering: .relaxed)
  }

  /// Raises the dynamic shared-memory limit to at least `bytes`, calling the driver only the
  /// first time (a kernel's launches all ask for the same amount).
  func allowDynamicSharedMemory(_ bytes: Int) throws(FlashAttentionError) {
    if dynamicSharedMemoryLimit.load(ordering: .relaxed) >= bytes { return }
    try setMaxDynamicSharedMemory(bytes)
  }

  /// Registers per thread as loaded (`CU_FUNC_ATTRIBUTE_NUM_REGS`).
  package func registers() throws(FlashAttentionError) -> Int {
    var value: Int32 = 0
    try device.makeCurrent()
    try device.api.check(device.api.cuFuncGetAttribute(&value, 4, handle), "cuFuncGetAttribute(NUM_REGS)")
    return Int(value)
  }

  /// Queues the kernel on `stream` with its one parameter, a struct of the kernel ABI header
  /// (`const __grid_constant__` on the device side), and checks the launch status.
  /// - Parameters:
  ///   - grid: blocks in x, y, z (x below 2^31, y and z below 2^16, the driver's limits).
  ///   - block: threads in x, y, z.
  ///   - sharedMemory: dynamic shared memory bytes per block.
  /// - Throws: `.unsupported` for a grid beyond the limits (a problem too large for one
  ///   launch), `.cuda` when the driver refuses the launch.
  package func launch<Parameters: BitwiseCopyable>(
    grid: (Int, Int, Int), block: (Int, Int, Int), sharedMemory: Int = 0, parameters: Parameters,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    guard (1...Int(Int32.max)).contains(grid.0), (1...65535).contains(grid.1), (1...65535).contains(grid.2),
      (1...1024).contains(block.0 * block.1 * block.2), (0...Int(Int32.max)).contains(sharedMemory)
    else {
      throw .unsupported(
        backend: "cuda:\(device.ordinal)",
        feature: "\(entry) with grid \(grid), block \(block) (a grid is at most 2^31 - 1 x 65535 x 65535 blocks)")
    }
    let api = device.api
    try device.makeCurrent()
    var copy = parameters
    let status = withUnsafeMutableBytes(of: &copy) { bytes -> Int32 in
      var pointers: [UnsafeMutableRawPointer?] = [bytes.baseAddress]
      return pointers.withUnsafeMutableBufferPointer { list in
        api.cuLaunchKernel(
          handle, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1),
          UInt32(block.2), UInt32(sharedMemory), stream.handle, list.baseAddress, nil)
      }
    }
    try api.check(status, "cuLaunchKernel(\(entry), grid \(grid), block \(block), smem \(sharedMemory))")
  }
}
