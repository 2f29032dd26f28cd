import FlashAttentionCore
import Synchronization

/// A forward kernel family that can take a call before the FlashAttention-2 kernels (the sm_90a
/// wgmma kernels on Hopper).
///
/// `CUDABackend` asks each provider in order; the first that returns true has queued the work
/// on `stream`. A provider returns false for what it does not support (a head dim, a mask, an
/// architecture), and the sm80 kernels run instead.
public protocol ForwardKernelProvider: Sendable {
  func enqueueForward(
    _ arguments: ForwardArguments, device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) -> Bool
}

/// The providers `CUDABackend` consults, in order.
public enum ForwardKernelProviders {
  private static let registered = Mutex<[any ForwardKernelProvider]>([HopperForwardProvider()])

  /// Adds a provider ahead of the built-in FlashAttention-2 kernels (later ones are asked first).
  public static func register(_ provider: any ForwardKernelProvider) {
    registered.withLock { $0.insert(provider, at: 0) }
  }

  /// The providers in the order they are asked. Setting `FLASH_ATTENTION_FORWARD=fa2` skips
  /// them all (to compare against the FlashAttention-2 kernels).
  static var current: [any ForwardKernelProvider] {
    if ProcessEnvironment.value("FLASH_ATTENTION_FORWARD") == "fa2" { return [] }
    return registered.withLock { $0 }
  }
}
