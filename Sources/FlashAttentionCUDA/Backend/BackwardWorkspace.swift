import FlashAttentionCore
import Synchronization

/// The backward pass's fp32 scratch (LSE in log2 units, D = rowsum(dO ∘ O), the dQ
/// accumulator), kept per backend and reused in stream order on the backend's own stream, so a
/// backward call neither allocates nor waits.
final class BackwardWorkspace: Sendable {
  private let buffer = Mutex<CUDABuffer?>(nil)

  /// Runs `body` with a buffer of at least `byteCount` bytes. The lock is held for the whole
  /// enqueue so that one host thread never grows the buffer under another's queued kernels;
  /// growing waits for `stream` first, because the old buffer is freed.
  func withBuffer(
    device: CUDADevice, byteCount: Int, stream: CUDAStream,
    _ body: (CUDABuffer) throws(FlashAttentionError) -> Void
  ) throws(FlashAttentionError) {
    try buffer.withLock { (current: inout CUDABuffer?) throws(FlashAttentionError) -> Void in
      if (current?.byteCount ?? -1) < byteCount {
        if current != nil { try stream.synchronize() }
        current = nil
        current = try CUDABuffer(device: device, byteCount: byteCount)
      }
      if let current { try body(current) }
    }
  }
}
