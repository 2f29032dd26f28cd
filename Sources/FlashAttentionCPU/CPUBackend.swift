import FlashAttentionCore

/// The CPU backend. (Skeleton: the CPU kernels issue fills this in.)
public struct CPUBackend: AttentionBackend {
  public var name: String { "cpu" }

  public init() throws(FlashAttentionError) {}

  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "forward (not implemented yet)")
  }

  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "backward (not implemented yet)")
  }
}
