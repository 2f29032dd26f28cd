import FlashAttentionCore

/// Owned device memory (`cuMemAlloc_v2`), freed on deinit, with async copies on a stream.
package final class CUDABuffer: @unchecked Sendable {
  package let device: CUDADevice
  package let byteCount: Int
  /// The `CUdeviceptr`.
  package let address: UInt64

  /// Allocates `byteCount` bytes (at least 1) on `device`; contents are undefined.
  /// - Throws: `.outOfMemory` when the driver cannot satisfy it.
  package init(device: CUDADevice, byteCount: Int) throws(FlashAttentionError) {
    self.device = device
    self.byteCount = byteCount
    try device.makeCurrent()
    var pointer: CUdeviceptr = 0
    let status = device.api.cuMemAlloc(&pointer, max(byteCount, 1))
    if status == CUDAResult.outOfMemory.rawValue {
      throw .outOfMemory(bytes: byteCount, context: "cuMemAlloc_v2 on \(device.name)")
    }
    try device.api.check(status, "cuMemAlloc_v2(\(byteCount) bytes)")
    address = pointer
  }

  deinit {
    _ = try? device.makeCurrent()
    _ = device.api.cuMemFree(address)
  }

  /// A view of this buffer as a tensor (contiguous unless `strides` says otherwise).
  package func view(dtype: DType, shape: [Int], strides: [Int]? = nil) -> TensorView {
    TensorView(
      baseAddress: UnsafeMutableRawPointer(bitPattern: UInt(address)) ?? UnsafeMutableRawPointer(bitPattern: 1)!,
      dtype: dtype, shape: shape, strides: strides, location: .cuda(device: device.ordinal), owner: self)
  }

  /// Copies `byteCount` bytes from host memory into this buffer at `offset`, queued on `stream`.
  /// The host memory must stay valid until the stream reaches the copy.
  package func upload(
    from host: UnsafeRawPointer, byteCount: Int, offset: Int = 0, stream: CUDAStream
  ) throws(FlashAttentionError) {
    try checkRange(offset: offset, count: byteCount)
    try device.makeCurrent()
    try device.api.check(
      device.api.cuMemcpyHtoDAsync(address + UInt64(offset), host, byteCount, stream.handle),
      "cuMemcpyHtoDAsync_v2(\(byteCount) bytes)")
  }

  /// Copies `byteCount` bytes from this buffer at `offset` into host memory, queued on `stream`.
  package func download(
    to host: UnsafeMutableRawPointer, byteCount: Int, offset: Int = 0, stream: CUDAStream
  ) throws(FlashAttentionError) {
    try checkRange(offset: offset, count: byteCount)
    try device.makeCurrent()
    try device.api.check(
      device.api.cuMemcpyDtoHAsync(host, address + UInt64(offset), byteCount, stream.handle),
      "cuMemcpyDtoHAsync_v2(\(byteCount) bytes)")
  }

  /// Copies a host tensor's bytes in and waits (a convenience for tests and tools).
  package func upload(_ tensor: HostTensor, stream: CUDAStream) throws(FlashAttentionError) {
    try upload(from: tensor.storage, byteCount: tensor.byteCount, stream: stream)
    try stream.synchronize()
  }

  /// Copies this buffer's first `tensor.byteCount` bytes into a host tensor and waits.
  package func download(_ tensor: HostTensor, stream: CUDAStream) throws(FlashAttentionError) {
    try download(to: tensor.storage, byteCount: tensor.byteCount, stream: stream)
    try stream.synchronize()
  }

  /// Sets every byte to `value` (0xFF makes fp16/bf16/fp32 NaN, the poison for tests).
  package func fill(byte value: UInt8, stream: CUDAStream) throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuMemsetD8Async(address, value, byteCount, stream.handle), "cuMemsetD8Async")
  }

  private func checkRange(offset: Int, count: Int) throws(FlashAttentionError) {
    if offset < 0 || count < 0 || offset + count > byteCount {
      throw .invalidArgument(
        name: "byteCount", value: "\(count) at offset \(offset)",
        reason: "exceeds the device buffer of \(byteCount) bytes")
    }
  }
}
