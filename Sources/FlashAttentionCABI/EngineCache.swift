import FlashAttention
import Synchronization

/// One engine per memory location, made on first use and kept for the process: opening the CUDA
/// driver, NVRTC and a stream costs milliseconds, a call must not pay it again. A backend that
/// cannot start is not cached, so a later call (after the user installs NVRTC, say) retries.
enum EngineCache {
  private static let engines = Mutex<[MemoryLocation: AttentionEngine]>([:])

  static func engine(for location: MemoryLocation) throws(FlashAttentionError) -> AttentionEngine {
    if let engine = engines.withLock({ $0[location] }) { return engine }
    let choice: BackendChoice =
      switch location {
      case .host: .cpu
      case let .cuda(device): .cuda(device: device)
      }
    let engine = try AttentionEngine(backend: choice)
    return engines.withLock { cached in
      if let existing = cached[location] { return existing }
      cached[location] = engine
      return engine
    }
  }
}
