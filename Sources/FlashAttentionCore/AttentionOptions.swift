/// A sliding window of visible keys around each query's diagonal (FlashAttention semantics).
/// Query `i` sees key `j` iff `i + sk - sq - left <= j <= i + sk - sq + right`; `nil` means
/// unbounded on that side.
public struct SlidingWindow: Sendable, Hashable, CustomStringConvertible {
  public var left: Int?
  public var right: Int?

  public init(left: Int?, right: Int?) {
    self.left = left
    self.right = right
  }

  /// FlashAttention's integer convention: a negative bound means unbounded.
  public init(flashAttentionLeft left: Int, right: Int) {
    self.left = left < 0 ? nil : left
    self.right = right < 0 ? nil : right
  }

  public var description: String {
    "(\(left.map(String.init) ?? "inf"), \(right.map(String.init) ?? "inf"))"
  }
}

/// What is computed beyond plain softmax attention.
public struct AttentionOptions: Sendable, Hashable {
  /// Multiplies QKᵀ; `nil` means `1 / sqrt(head_dim)`.
  public var scale: Float?
  /// Bottom-right aligned causal mask: query `i` sees key `j` iff `j <= i + sk - sq`.
  public var causal: Bool
  /// Optional sliding window; combined with `causal`, its right bound becomes 0.
  public var window: SlidingWindow?
  /// Gemma-2 style logit soft-capping `s = c · tanh(s / c)` when `c > 0`; 0 disables it.
  public var softcap: Float
  /// Ask backends for bit-reproducible results (no floating-point atomics in the backward pass).
  public var deterministic: Bool
  /// ALiBi slopes; nil disables the bias.
  public var alibiSlopes: AlibiSlopes?
  /// Dropout on P; nil (or probability 0) disables it.
  public var dropout: AttentionDropout?

  public init(
    scale: Float? = nil, causal: Bool = false, window: SlidingWindow? = nil, softcap: Float = 0,
    deterministic: Bool = false, alibiSlopes: AlibiSlopes? = nil, dropout: AttentionDropout? = nil
  ) {
    self.scale = scale
    self.causal = causal
    self.window = window
    self.softcap = softcap
    self.deterministic = deterministic
    self.alibiSlopes = alibiSlopes
    self.dropout = dropout
  }

  /// The dropout that acts: nil where none was asked for or its probability is 0.
  public var activeDropout: AttentionDropout? {
    guard let dropout, dropout.probability > 0 else { return nil }
    return dropout
  }

  /// The options of batch entry `b` run alone as a batch of one (a packed batch's sequence):
  /// its row of a `(batch, heads_q)` slope table, and its batch coordinate for dropout.
  public func sequence(_ b: Int, headsQ: Int) -> AttentionOptions {
    var options = self
    options.alibiSlopes = alibiSlopes?.sequence(b, headsQ: headsQ)
    options.dropout?.firstBatch += b
    return options
  }

  /// The checks that need the problem's batch and query heads (the slope table's shape).
  public func validate(batch: Int, headsQ: Int) throws(FlashAttentionError) {
    try validate()
    try alibiSlopes?.validate(batch: batch, headsQ: headsQ)
  }

  /// The scale actually used for `headDim`.
  public func resolvedScale(headDim: Int) -> Float {
    scale ?? 1 / Float(headDim).squareRoot()
  }

  public func validate() throws(FlashAttentionError) {
    if let scale, !(scale.isFinite && scale > 0) {
      throw .invalidArgument(name: "scale", value: "\(scale)", reason: "must be finite and > 0")
    }
    if !(softcap.isFinite && softcap >= 0) {
      throw .invalidArgument(
        name: "softcap", value: "\(softcap)", reason: "must be finite and >= 0 (0 disables it)")
    }
    if let window {
      if let left = window.left, left < 0 {
        throw .invalidArgument(
          name: "window.left", value: "\(left)", reason: "must be >= 0 (or unbounded)")
      }
      if let right = window.right, right < 0 {
        throw .invalidArgument(
          name: "window.right", value: "\(right)", reason: "must be >= 0 (or unbounded)")
      }
    }
    try dropout?.validate()
  }
}
