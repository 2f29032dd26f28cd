import CFlashAttention
import FlashAttention

/// `fa_options` to `AttentionOptions`, with the errors naming the C fields.
enum OptionsDescriptor {
  /// The size of the first version of `fa_options` (up to `deterministic`): callers built
  /// against it stay valid when later versions append fields.
  static let firstVersionSize: UInt32 = 40

  /// The size that holds the fp8 descale pointers.
  static let descaleVersionSize = UInt32((MemoryLayout<fa_options>.offset(of: \fa_options.v_descale) ?? 56) + 8)

  static var defaults: fa_options {
    fa_options(
      struct_size: UInt32(MemoryLayout<fa_options>.size), softmax_scale: 0, causal: 0, window_left: -1,
      window_right: -1, softcap: 0, deterministic: 0, q_descale: nil, k_descale: nil, v_descale: nil)
  }

  /// The fp8 descale factors of `options` (none when the caller's struct predates them).
  static func descale(_ pointer: UnsafePointer<fa_options>?) throws(FlashAttentionError) -> FP8Descale {
    guard let pointer, pointer.pointee.struct_size >= descaleVersionSize else { return .none }
    let options = pointer.pointee
    func view(_ tensor: UnsafePointer<fa_tensor>?, _ name: String) throws(FlashAttentionError) -> TensorView? {
      guard let tensor else { return nil }
      return try TensorDescriptor.view(tensor, name: name)
    }
    return FP8Descale(
      q: try view(options.q_descale, "options.q_descale"), k: try view(options.k_descale, "options.k_descale"),
      v: try view(options.v_descale, "options.v_descale"))
  }

  /// Calls other than the dense forward take no descale factors.
  private static func refuseDescale(_ pointer: UnsafePointer<fa_options>?) throws(FlashAttentionError) {
    if let pointer, pointer.pointee.struct_size >= descaleVersionSize,
      let name = [
        (pointer.pointee.q_descale, "q_descale"), (pointer.pointee.k_descale, "k_descale"),
        (pointer.pointee.v_descale, "v_descale"),
      ].first(where: { $0.0 != nil })?.1
    {
      throw .invalidArgument(name: "options.\(name)", value: "non-NULL", reason: "fp8 descale factors apply to fa_forward only")
    }
  }

  /// `acceptsDescale`: fa_forward reads the descale fields (``descale(_:)``); every other call
  /// refuses them.
  static func options(
    _ pointer: UnsafePointer<fa_options>?, acceptsDescale: Bool = false
  ) throws(FlashAttentionError) -> AttentionOptions {
    guard let pointer else { return AttentionOptions() }
    let size = pointer.pointee.struct_size
    guard size >= firstVersionSize, size <= UInt32(MemoryLayout<fa_options>.size) else {
      throw .invalidArgument(
        name: "options.struct_size", value: "\(size)",
        reason: "must be sizeof(fa_options) = \(MemoryLayout<fa_options>.size) (start from fa_options_default())")
    }
    if !acceptsDescale { try refuseDescale(pointer) }
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
