import FlashAttentionCore

/// A loaded module (`cuModuleLoadData` of a CUBIN) and one kernel in it, ready to launch.
public final class CUDAFunction: @unchecked Sendable {
  public let device: CUDADevice
  public let entry: String
  let module: CUhandle?
  let handle: CUhandle?

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
  public func setMaxDynamicSharedMemory(_ bytes: Int) throws(FlashAttentionError) {
    try device.makeCurrent()
    // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    try device.api.check(
      device.api.cuFuncSetAttribute(handle, 8, Int32(bytes)), "cuFuncSetAttribute(\(entry), smem \(bytes))")
  }

  /// Registers per thread as loaded (`CU_FUNC_ATTRIBUTE_NUM_REGS`).
  public func registers() throws(FlashAttentionError) -> Int {
    var value: Int32 = 0
    try device.makeCurrent()
    try device.api.check(device.api.cuFuncGetAttribute(&value, 4, handle), "cuFuncGetAttribute(NUM_REGS)")
    return Int(value)
  }

  /// Queues the kernel on `stream` and checks the launch status.
  /// - Parameters:
  ///   - grid: blocks in x, y, z.
  ///   - block: threads in x, y, z.
  ///   - sharedMemory: dynamic shared memory bytes per block.
  public func launch(
    grid: (Int, Int, Int), block: (Int, Int, Int), sharedMemory: Int = 0,
    arguments: CUDAKernelArguments, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let api = device.api
    try device.makeCurrent()
    var storage = arguments.bytes
    let offsets = arguments.offsets
    let status = storage.withUnsafeMutableBytes { raw -> Int32 in
      var pointers: [UnsafeMutableRawPointer?] = offsets.map { offset in raw.baseAddress.map { $0 + offset } }
      return pointers.withUnsafeMutableBufferPointer { list in
        api.cuLaunchKernel(
          handle, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1),
          UInt32(block.2), UInt32(sharedMemory), stream.handle, list.baseAddress, nil)
      }
    }
    try api.check(
      status, "cuLaunchKernel(\(entry), grid \(grid), block \(block), smem \(sharedMemory))")
  }
}
