/// ALiBi (attention with linear biases): query head `h` of batch entry `b` adds
/// `-slope(b, h) · |i + seqlen_k - seqlen_q - j|` to the scaled (and soft-capped) score of query
/// `i` and key `j`, before the mask (FlashAttention-2's rule and order).
///
/// The slopes are float32 of shape `(heads_q)`, shared by every batch entry, or
/// `(batch, heads_q)`, row-major (FlashAttention-2's `alibi_slopes`).
public struct AlibiSlopes: Sendable, Hashable {
  /// `heads_q` values, or `batch · heads_q` row-major.
  public let values: [Float]
  /// The batch size of a `(batch, heads_q)` table; nil for `(heads_q)`.
  public let batch: Int?

  /// One slope per query head, the same for every batch entry.
  public init(perHead values: [Float]) {
    self.values = values
    self.batch = nil
  }

  /// A `(batch, heads_q)` table, row-major.
  public init(batch: Int, values: [Float]) {
    self.values = values
    self.batch = batch
  }

  /// The slope of query head `head` of batch entry `batch`.
  @inlinable public func slope(batch b: Int, head: Int, headsQ: Int) -> Float {
    batch == nil ? values[head] : values[b * headsQ + head]
  }

  /// Batch entry `b`'s slopes as a `(heads_q)` table: how a packed batch's sequences, run one by
  /// one, each see their own row.
  public func sequence(_ b: Int, headsQ: Int) -> AlibiSlopes {
    guard batch != nil else { return self }
    return AlibiSlopes(perHead: Array(values[(b * headsQ)..<((b + 1) * headsQ)]))
  }

  /// Checks the table's shape against the problem's and that every slope is finite.
  public func validate(batch expectedBatch: Int, headsQ: Int) throws(FlashAttentionError) {
    if let batch {
      guard batch == expectedBatch, values.count == batch * headsQ else {
        throw .invalidArgument(
          name: "alibi_slopes", value: "(\(batch), \(batch == 0 ? values.count : values.count / batch))",
          reason: "must have shape (heads_q) = (\(headsQ)) or (batch, heads_q) = (\(expectedBatch), \(headsQ))")
      }
    } else if values.count != headsQ {
      throw .invalidArgument(
        name: "alibi_slopes", value: "(\(values.count))",
        reason: "must have shape (heads_q) = (\(headsQ)) or (batch, heads_q) = (\(expectedBatch), \(headsQ))")
    }
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw .invalidArgument(name: "alibi_slopes[\(bad)]", value: "\(values[bad])", reason: "must be finite")
    }
  }
}
