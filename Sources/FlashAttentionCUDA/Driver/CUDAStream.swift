import FlashAttentionCore

/// A driver stream on one device. Work queued on it runs in order; `synchronize` waits for it.
///
/// Either the library's own (`init(device:)`, destroyed with the object) or a caller's
/// (`init(borrowing:device:)`: a `CUstream` of another framework, such as PyTorch's current
/// stream, which the library queues on and never destroys).
package final class CUDAStream: @unchecked Sendable {
  package let device: CUDADevice
  let handle: CUhandle?
  /// Whether this object created the stream (and destroys it).
  package let isOwned: Bool

  /// A new non-blocking stream (`CU_STREAM_NON_BLOCKING`), so it never waits on the legacy
  /// default stream of other libraries in the process.
  package init(device: CUDADevice) throws(FlashAttentionError) {
    self.device = device
    try device.makeCurrent()
    var stream: CUhandle?
    try device.api.check(device.api.cuStreamCreate(&stream, 1), "cuStreamCreate")
    handle = stream
    isOwned = true
  }

  /// A caller's stream (`CUstream`) on `device`, e.g. `torch.cuda.current_stream().cuda_stream`;
  /// nil is the legacy default stream. The caller keeps it alive while work queued through this
  /// object runs; the library never destroys it.
  package init(borrowing rawHandle: OpaquePointer?, device: CUDADevice) {
    self.device = device
    handle = rawHandle
    isOwned = false
  }

  deinit {
    guard isOwned else { return }
    _ = try? device.makeCurrent()
    _ = device.api.cuStreamDestroy(handle)
  }

  /// The raw `CUstream`, for interop with other frameworks.
  package var rawHandle: OpaquePointer? { handle }

  /// Blocks until every queued operation has finished; reports asynchronous kernel faults.
  package func synchronize() throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuStreamSynchronize(handle), "cuStreamSynchronize")
  }
}

/// A timing event (`cuEventCreate` with default flags, so it records time).
package final class CUDAEvent: @unchecked Sendable {
  package let device: CUDADevice
  let handle: CUhandle?

  package init(device: CUDADevice) throws(FlashAttentionError) {
    self.device = device
    try device.makeCurrent()
    var event: CUhandle?
    try device.api.check(device.api.cuEventCreate(&event, 0), "cuEventCreate")
    handle = event
  }

  deinit {
    _ = try? device.makeCurrent()
    _ = device.api.cuEventDestroy(handle)
  }

  /// Records the event at the current end of `stream`'s queue.
  package func record(on stream: CUDAStream) throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuEventRecord(handle, stream.handle), "cuEventRecord")
  }

  package func synchronize() throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuEventSynchronize(handle), "cuEventSynchronize")
  }

  /// Milliseconds between `start` and this event (both recorded; waits for this one).
  package func elapsedMilliseconds(since start: CUDAEvent) throws(FlashAttentionError) -> Float {
    try synchronize()
    var milliseconds: Float = 0
    try device.api.check(
      device.api.cuEventElapsedTime(&milliseconds, start.handle, handle), "cuEventElapsedTime")
    return milliseconds
  }
}
