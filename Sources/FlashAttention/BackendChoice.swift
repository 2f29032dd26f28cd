import FlashAttentionCPU
import FlashAttentionCUDA

/// Which compute backend runs the attention.
public enum BackendChoice: Sendable, Hashable, CustomStringConvertible {
  case cpu
  case cuda(device: Int)
  /// CUDA when a usable GPU and NVRTC are found, otherwise the CPU. The environment variable
  /// `FLASH_ATTENTION_BACKEND` (`cpu`, `cuda`, `cuda:N`, `auto`) overrides it.
  case automatic

  /// Parses `cpu`, `cuda`, `cuda:N`, `auto`/`automatic`.
  public init?(parsing text: String) {
    let lowered = text.lowercased()
    switch lowered {
    case "cpu": self = .cpu
    case "cuda", "gpu": self = .cuda(device: 0)
    case "auto", "automatic": self = .automatic
    default:
      guard lowered.hasPrefix("cuda:"), let device = Int(lowered.dropFirst(5)), device >= 0 else { return nil }
      self = .cuda(device: device)
    }
  }

  public var description: String {
    switch self {
    case .cpu: "cpu"
    case let .cuda(device): "cuda:\(device)"
    case .automatic: "auto"
    }
  }
}
