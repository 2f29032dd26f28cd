import FlashAttentionCore

extension CUDABackend {
  /// Runs `body` with the device address of the call's ALiBi slopes (0 without ALiBi): a copy in
  /// the scratch pool, queued on `stream` before the kernels `body` queues and freed after them.
  /// The slopes are host values (`AlibiSlopes`); the copy from pageable memory returns once the
  /// driver has staged them, so the array may go right after.
  func withAlibiSlopes<Result>(
    _ options: AttentionOptions, on stream: CUDAStream, _ body: (UInt64) throws(FlashAttentionError) -> Result
  ) throws(FlashAttentionError) -> Result {
    guard let slopes = options.alibiSlopes, !slopes.values.isEmpty else { return try body(0) }
    let bytes = slopes.values.count * MemoryLayout<Float>.size
    return try DeviceScratchPool.shared(for: device).withScratch(bytes, on: stream) {
      (address) throws(FlashAttentionError) -> Result in
      try device.makeCurrent()
      let status = slopes.values.withUnsafeBytes { raw in
        device.api.cuMemcpyHtoDAsync(address, raw.baseAddress!, bytes, stream.handle)
      }
      try device.api.check(status, "cuMemcpyHtoDAsync_v2(ALiBi slopes, \(bytes) bytes)")
      return try body(address)
    }
  }
}
