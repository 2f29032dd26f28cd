import FlashAttentionCore

extension CUDABackend {
  /// Queues the backward pass on `stream` without waiting; all views must be on this device.
  public func enqueueBackward(_ arguments: BackwardArguments, on stream: CUDAStream) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "backward (in progress)")
  }
}
