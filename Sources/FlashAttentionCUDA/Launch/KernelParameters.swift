import FlashAttentionCore
import _FlashAttentionKernelABI

// Helpers that fill the kernels' parameter structs (Kernels/FlashAttentionKernelABI.h, imported
// from `_FlashAttentionKernelABI`) from validated arguments.

extension FAStrides {
  /// The batch, row and head strides (elements) of a `[batch, seqlen, heads, dim]` view.
  init(_ view: TensorView) {
    self.init(batch: Int64(view.strides[0]), row: Int64(view.strides[1]), head: Int64(view.strides[2]))
  }
}

extension FAStatsStrides {
  /// The batch and head strides (elements) of a `[batch, heads, seqlen]` statistics view.
  init(_ view: TensorView) {
    self.init(batch: Int64(view.strides[0]), head: Int64(view.strides[1]))
  }
}

/// The mask's bounds for the kernels: FlashAttention's integers (-1 unbounded), clamped at
/// seqlen_q + seqlen_k, which already shows every key to every row, so that a larger bound
/// changes nothing and cannot overflow the kernels' 32-bit index sums.
func kernelWindow(_ mask: AttentionMask) -> (left: Int32, right: Int32) {
  let reach = mask.seqlenQ + mask.seqlenK
  return (
    Int32(clamping: mask.left.map { min($0, reach) } ?? -1), Int32(clamping: mask.right.map { min($0, reach) } ?? -1)
  )
}

/// A device address as the pointer type a parameter struct declares (the host never
/// dereferences it).
func devicePointer<Pointee>(_ address: UInt64) -> UnsafePointer<Pointee>? {
  UnsafePointer(bitPattern: UInt(address))
}

/// A device address as a mutable pointer field of a parameter struct.
func deviceMutablePointer<Pointee>(_ address: UInt64) -> UnsafeMutablePointer<Pointee>? {
  UnsafeMutablePointer(bitPattern: UInt(address))
}

extension FADropoutParams {
  /// The call's dropout as the kernels take it (all zero without dropout). The generator's
  /// (batch, head) index is 32-bit and wraps, on every backend alike.
  init(_ options: AttentionOptions, headsQ: Int) {
    guard let dropout = options.activeDropout else {
      self.init()
      return
    }
    self.init(
      seed: dropout.seed, offset: dropout.offset, threshold: Int32(clamping: dropout.keepThreshold),
      keep_scale: dropout.keptScale, batch_head_base: Int32(truncatingIfNeeded: dropout.firstBatch &* headsQ),
      heads_q: Int32(truncatingIfNeeded: headsQ))
  }
}
