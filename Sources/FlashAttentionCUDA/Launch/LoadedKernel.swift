import FlashAttentionCore

extension CUDADevice {
  /// The compiled and loaded kernel of `key` (`KernelCache`), its dynamic shared-memory limit
  /// raised to what the key needs.
  /// - Throws: `.unsupported` when the key needs more shared memory than this device allows per
  ///   block; `.compilation` or `.cuda` from the compile and load.
  func loadedKernel(_ key: some CUDAKernelKey) throws(FlashAttentionError) -> CUDAFunction {
    let bytes = key.sharedMemoryBytes
    if bytes > sharedMemoryPerBlockOptIn {
      throw .unsupported(
        backend: "cuda:\(ordinal)",
        feature: "\(key) (needs \(bytes) bytes of shared memory, \(name) allows \(sharedMemoryPerBlockOptIn))")
    }
    let function = try KernelCache.shared.function(for: key, device: self)
    if bytes > 48 * 1024 { try function.allowDynamicSharedMemory(bytes) }
    return function
  }
}
