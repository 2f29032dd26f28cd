/// The sizes of one attention problem. Layout is `[batch, seqlen, heads, head_dim]` for Q, K, V
/// and O; LSE is `[batch, heads_q, seqlen_q]`.
public struct AttentionShape: Sendable, Hashable, CustomStringConvertible {
  public var batch: Int
  public var seqlenQ: Int
  public var seqlenK: Int
  public var headsQ: Int
  public var headsKV: Int
  public var headDim: Int
  public var headDimV: Int

  public init(
    batch: Int, seqlenQ: Int, seqlenK: Int? = nil, headsQ: Int, headsKV: Int? = nil,
    headDim: Int, headDimV: Int? = nil
  ) {
    self.batch = batch
    self.seqlenQ = seqlenQ
    self.seqlenK = seqlenK ?? seqlenQ
    self.headsQ = headsQ
    self.headsKV = headsKV ?? headsQ
    self.headDim = headDim
    self.headDimV = headDimV ?? headDim
  }

  /// Query heads that share one key/value head (1 for MHA, `headsQ` for MQA).
  public var groupSize: Int { headsQ / headsKV }

  /// The key/value head read by query head `h`.
  @inlinable public func kvHead(forQueryHead h: Int) -> Int { h / (headsQ / headsKV) }

  public var qShape: [Int] { [batch, seqlenQ, headsQ, headDim] }
  public var kShape: [Int] { [batch, seqlenK, headsKV, headDim] }
  public var vShape: [Int] { [batch, seqlenK, headsKV, headDimV] }
  public var oShape: [Int] { [batch, seqlenQ, headsQ, headDimV] }
  public var lseShape: [Int] { [batch, headsQ, seqlenQ] }

  /// Checks the sizes alone (the tensors are checked against them elsewhere).
  public func validate() throws(FlashAttentionError) {
    func require(_ ok: Bool, _ name: String, _ value: Int, _ reason: String) throws(FlashAttentionError) {
      if !ok { throw .invalidArgument(name: name, value: "\(value)", reason: reason) }
    }
    try require(batch >= 0, "batch", batch, "must be >= 0")
    try require(seqlenQ >= 0, "seqlen_q", seqlenQ, "must be >= 0")
    try require(seqlenK >= 0, "seqlen_k", seqlenK, "must be >= 0")
    try require(headsQ >= 1, "heads_q", headsQ, "must be >= 1")
    try require(headsKV >= 1, "heads_kv", headsKV, "must be >= 1")
    try require(headDim >= 1, "head_dim", headDim, "must be >= 1")
    try require(headDimV >= 1, "head_dim_v", headDimV, "must be >= 1")
    if headsQ % headsKV != 0 {
      throw .invalidArgument(
        name: "heads_q", value: "\(headsQ)",
        reason: "must be a multiple of heads_kv (\(headsKV)) for grouped-query attention")
    }
    // Every tensor of the problem must be addressable in its widest dtype (4 bytes), empty axes
    // counted as 1 so that row-major strides and the offsets of partial rows fit too; then no
    // index arithmetic behind the validation can overflow.
    for (name, tensorShape) in [("q", qShape), ("k", kShape), ("v", vShape), ("out", oShape), ("lse", lseShape)] {
      guard let span = CheckedSize.denseSpan(tensorShape), CheckedSize.byteCount(elements: span, dtype: .float32) != nil
      else {
        throw .invalidArgument(
          name: "\(name).shape", value: "\(tensorShape)",
          reason: "too large: its sizes (empty ones counted as 1) multiply to more than 2^62 bytes")
      }
    }
  }

  /// Forward FLOPs by the FlashAttention papers' count: two GEMMs of `2·d` and `2·d_v` per
  /// visible score (the count of visible scores comes from the mask).
  public func forwardFLOPs(visibleScores: Int) -> Double {
    Double(batch) * Double(headsQ) * Double(visibleScores) * Double(2 * headDim + 2 * headDimV)
  }

  public var description: String {
    var text = "b=\(batch) sq=\(seqlenQ) sk=\(seqlenK) hq=\(headsQ) hkv=\(headsKV) d=\(headDim)"
    if headDimV != headDim { text += " dv=\(headDimV)" }
    return text
  }
}
