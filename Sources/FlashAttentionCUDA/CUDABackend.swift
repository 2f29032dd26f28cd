import FlashAttentionCore

/// The NVIDIA backend. (Skeleton: the CUDA backend issue fills this in.)
public struct CUDABackend: AttentionBackend {
  public let device: Int
  public var name: String { "cuda:\(device)" }

  /// Opens the driver and NVRTC and makes `device` usable, or says why it cannot.
  public init(device: Int = 0) throws(FlashAttentionError) {
    self.device = device
    throw .backendUnavailable(backend: "cuda", reason: "the CUDA backend is not built yet")
  }

  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "forward")
  }

  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "backward")
  }
}
