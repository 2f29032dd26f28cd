import CFlashAttention
import FlashAttention

/// `fa_options` to `AttentionOptions`, with the errors naming the C fields.
enum OptionsDescriptor {
  /// The size of the first version of `fa_options`: callers built against it stay valid when
  /// later versions append fields.
  static let firstVersionSize = UInt32(MemoryLayout<fa_options>.size)

  static var defaults: fa_options {
    fa_options(
      struct_size: UInt32(MemoryLayout<fa_options>.size), softmax_scale: 0, causal: 0, window_left: -1,
      window_right: -1, softcap: 0, deterministic: 0)
  }

  static func options(_ pointer: UnsafePointer<fa_options>?) throws(FlashAttentionError) -> AttentionOptions {
    guard let pointer else { return AttentionOptions() }
    let size = pointer.pointee.struct_size
    guard size >= firstVersionSize, size <= UInt32(MemoryLayout<fa_options>.size) else {
      throw .invalidArgument(
        name: "options.struct_size", value: "\(size)",
        reason: "must be sizeof(fa_options) = \(MemoryLayout<fa_options>.size) (start from fa_options_default())")
    }
    let options = pointer.pointee
    let scale = options.softmax_scale
    guard scale.isFinite, scale >= 0 else {
      throw .invalidArgument(
        name: "options.softmax_scale", value: "\(scale)", reason: "must be finite and >= 0 (0 means 1/sqrt(head_dim))")
    }
    guard options.softcap.isFinite, options.softcap >= 0 else {
      throw .invalidArgument(
        name: "options.softcap", value: "\(options.softcap)", reason: "must be finite and >= 0 (0 disables it)")
    }
    for (value, field) in [(options.causal, "causal"), (options.deterministic, "deterministic")]
    where value != 0 && value != 1 {
      throw .invalidArgument(name: "options.\(field)", value: "\(value)", reason: "must be 0 or 1")
    }
    let left = options.window_left < 0 ? nil : Int(options.window_left)
    let right = options.window_right < 0 ? nil : Int(options.window_right)
    return AttentionOptions(
      scale: scale == 0 ? nil : scale, causal: options.causal == 1,
      window: left == nil && right == nil ? nil : SlidingWindow(left: left, right: right),
      softcap: options.softcap, deterministic: options.deterministic == 1)
  }
}
