import FlashAttentionCore

/// A driver stream on one device. Work queued on it runs in order; `synchronize` waits for it.
public final class CUDAStream: @unchecked Sendable {
  public let device: CUDADevice
  let handle: CUhandle?

  /// A new non-blocking stream (`CU_STREAM_NON_BLOCKING`), so it never waits on the legacy
  /// default stream of other libraries in the process.
  public init(device: CUDADevice) throws(FlashAttentionError) {
    self.device = device
    try device.makeCurrent()
    var stream: CUhandle?
    try device.api.check(device.api.cuStreamCreate(&stream, 1), "cuStreamCreate")
    handle = stream
  }

  deinit {
    _ = try? device.makeCurrent()
    _ = device.api.cuStreamDestroy(handle)
  }

  /// The raw `CUstream`, for interop with other frameworks.
  public var rawHandle: OpaquePointer? { handle }

  /// Blocks until every queued operation has finished; reports asynchronous kernel faults.
  public func synchronize() throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuStreamSynchronize(handle), "cuStreamSynchronize")
  }
}

/// A timing event (`cuEventCreate` with default flags, so it records time).
public final class CUDAEvent: @unchecked Sendable {
  public let device: CUDADevice
  let handle: CUhandle?

  public init(device: CUDADevice) throws(FlashAttentionError) {
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
  public func record(on stream: CUDAStream) throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuEventRecord(handle, stream.handle), "cuEventRecord")
  }

  public func synchronize() throws(FlashAttentionError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuEventSynchronize(handle), "cuEventSynchronize")
  }

  /// Milliseconds between `start` and this event (both recorded; waits for this one).
  public func elapsedMilliseconds(since start: CUDAEvent) throws(FlashAttentionError) -> Float {
    try synchronize()
    var milliseconds: Float = 0
    try device.api.check(
      device.api.cuEventElapsedTime(&milliseconds, start.handle, handle), "cuEventElapsedTime")
    return milliseconds
  }
}
