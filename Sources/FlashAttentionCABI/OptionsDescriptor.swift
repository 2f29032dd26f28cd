import CFlashAttention
import FlashAttention

/// `fa_options` to `AttentionOptions`, with the errors naming the C fields.
enum OptionsDescriptor {
  /// The size of the first version of `fa_options` (through `deterministic`): callers built
  /// against it stay valid when later versions append fields, which then read as defaults.
  static let firstVersionSize = UInt32(40)
  /// The end of the version-2 fields (ALiBi and dropout), where the version-3 fields begin.
  static let secondVersionSize = UInt32(MemoryLayout<fa_options>.offset(of: \fa_options.q_descale) ?? 72)
  /// The end of the version-3 fields (the fp8 descale pointers): today's `sizeof(fa_options)`.
  static let thirdVersionSize = UInt32(MemoryLayout<fa_options>.size)
  /// Every `struct_size` a caller may have been built with, oldest first.
  static let knownSizes = [firstVersionSize, secondVersionSize, thirdVersionSize]

  static var defaults: fa_options {
    fa_options(
      struct_size: UInt32(MemoryLayout<fa_options>.size), softmax_scale: 0, causal: 0, window_left: -1,
      window_right: -1, softcap: 0, deterministic: 0, alibi_slopes: nil, dropout_p: 0, dropout_seed: 0,
      dropout_offset: 0, q_descale: nil, k_descale: nil, v_descale: nil)
  }

  /// The caller's struct with the fields its version lacks at their defaults: only the caller's
  /// `struct_size` bytes are read, so an older struct is never read past its end.
  private static func copy(_ pointer: UnsafePointer<fa_options>) throws(FlashAttentionError) -> fa_options {
    let size = UnsafeRawPointer(pointer).load(as: UInt32.self)
    guard knownSizes.contains(size) else {
      throw .invalidArgument(
        name: "options.struct_size", value: "\(size)",
        reason: "must be sizeof(fa_options) = \(MemoryLayout<fa_options>.size) (start from fa_options_default())"
          + " or an earlier version's \(knownSizes.dropLast().map(String.init).joined(separator: " or "))")
    }
    var options = defaults
    withUnsafeMutableBytes(of: &options) { target in
      target.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: Int(size)))
    }
    return options
  }

  /// The fp8 descale factors of `options` (none when the caller's struct predates them).
  static func descale(_ pointer: UnsafePointer<fa_options>?) throws(FlashAttentionError) -> FP8Descale {
    guard let pointer else { return .none }
    let options = try copy(pointer)
    func view(_ tensor: UnsafePointer<fa_tensor>?, _ name: String) throws(FlashAttentionError) -> TensorView? {
      guard let tensor else { return nil }
      return try TensorDescriptor.view(tensor, name: name)
    }
    return FP8Descale(
      q: try view(options.q_descale, "options.q_descale"), k: try view(options.k_descale, "options.k_descale"),
      v: try view(options.v_descale, "options.v_descale"))
  }

  /// Calls other than the dense forward take no descale factors.
  private static func refuseDescale(_ options: fa_options) throws(FlashAttentionError) {
    if let name = [
        (options.q_descale, "q_descale"), (options.k_descale, "k_descale"), (options.v_descale, "v_descale"),
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
    let options = try copy(pointer)
    if !acceptsDescale { try refuseDescale(options) }
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
    let p = options.dropout_p
    guard p >= 0, p < 1 else {
      throw .invalidArgument(name: "options.dropout_p", value: "\(p)", reason: "must be in [0, 1) (0 disables it)")
    }
    return AttentionOptions(
      scale: scale == 0 ? nil : scale, causal: options.causal == 1,
      window: left == nil && right == nil ? nil : SlidingWindow(left: left, right: right),
      softcap: options.softcap, deterministic: options.deterministic == 1,
      alibiSlopes: try slopes(options.alibi_slopes),
      dropout: p > 0 ? AttentionDropout(probability: p, seed: options.dropout_seed, offset: options.dropout_offset) : nil)
  }

  /// The slopes of a float32 `(heads_q)` or `(batch, heads_q)` host tensor, copied.
  private static func slopes(_ pointer: UnsafePointer<fa_tensor>?) throws(FlashAttentionError) -> AlibiSlopes? {
    guard let pointer else { return nil }
    let name = "options.alibi_slopes"
    let view = try TensorDescriptor.view(pointer, name: name)
    guard view.dtype == .float32 else {
      throw .invalidArgument(name: "\(name).dtype", value: "\(view.dtype)", reason: "must be float32")
    }
    guard view.location == .host else {
      throw .invalidArgument(name: name, value: "\(view.location)", reason: "must be in host memory")
    }
    guard view.shape.count <= 2 else {
      throw .invalidArgument(name: "\(name).rank", value: "\(view.shape.count)", reason: "must be 1 (heads_q) or 2 (batch, heads_q)")
    }
    let rows = view.shape.count == 2 ? view.shape[0] : 1
    let columns = view.shape[view.shape.count - 1]
    var values: [Float] = []
    values.reserveCapacity(rows * columns)
    for row in 0..<rows {
      for column in 0..<columns {
        let offset = (view.shape.count == 2 ? row * view.strides[0] : 0) + column * view.strides[view.shape.count - 1]
        values.append(view.loadFloat(atElementOffset: offset))
      }
    }
    return view.shape.count == 2 ? AlibiSlopes(batch: rows, values: values) : AlibiSlopes(perHead: values)
  }
}
