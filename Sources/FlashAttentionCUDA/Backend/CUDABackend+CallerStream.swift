import FlashAttentionCore

extension CUDABackend {
  /// Queues the forward on the caller's stream (PyTorch's current stream, a C caller's
  /// `cudaStream_t`, or the special handles `CU_STREAM_LEGACY` = 0x1 and `CU_STREAM_PER_THREAD` =
  /// 0x2, which the driver takes as they are) and returns without waiting. The caller keeps the
  /// stream alive until the work is done; nothing here retains it.
  /// - Throws: as `enqueueForward`; `.invalidArgument` for host views (a stream orders device work).
  public func forward(_ arguments: ForwardArguments, stream: CallerStream) throws(FlashAttentionError) {
    try requireDeviceMemory(arguments.q.location)
    try enqueueForward(arguments, on: borrowed(stream))
  }

  /// Queues the backward on the caller's stream, its scratch from the device's pool in that
  /// stream's order (as `forward(_:stream:)`).
  public func backward(_ arguments: BackwardArguments, stream: CallerStream) throws(FlashAttentionError) {
    try requireDeviceMemory(arguments.q.location)
    try enqueueBackward(arguments, on: borrowed(stream))
  }

  private func borrowed(_ stream: CallerStream) -> CUDAStream {
    CUDAStream(borrowing: OpaquePointer(stream.handle), device: device)
  }

  private func requireDeviceMemory(_ location: MemoryLocation) throws(FlashAttentionError) {
    if case .host = location {
      throw .invalidArgument(
        name: "stream", value: "a caller's stream", reason: "host tensors run synchronously; pass no stream")
    }
  }
}
