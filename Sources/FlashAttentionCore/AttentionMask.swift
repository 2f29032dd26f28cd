/// The set of keys each query row may see, resolved from the options and the sequence lengths.
/// Causal and window masks always leave a contiguous range `[lower, upper]` of keys per row, so a
/// kernel needs two numbers per row, and whole tiles outside the band can be skipped.
public struct AttentionMask: Sendable, Hashable {
  public let seqlenQ: Int
  public let seqlenK: Int
  /// Key `j` is visible to query `i` iff `i + offset - left <= j <= i + offset + right`,
  /// with `offset = seqlenK - seqlenQ` (bottom-right alignment); `nil` bounds are unbounded.
  public let left: Int?
  public let right: Int?

  /// A bound that reaches past every key is stored as unbounded (`nil`): the same keys are
  /// visible, and the row arithmetic `i + offset ± bound` stays far from overflow for any bound
  /// a caller passes (`Int.max` included).
  public init(options: AttentionOptions, seqlenQ: Int, seqlenK: Int) {
    self.seqlenQ = seqlenQ
    self.seqlenK = seqlenK
    var left = options.window?.left
    var right = options.window?.right
    if options.causal { right = min(right ?? 0, 0) }
    // Row i's first key is i + seqlenK - seqlenQ - left <= seqlenK - 1 - left, so left >= seqlenK
    // never excludes a key; its last is i + seqlenK - seqlenQ + right >= seqlenK - seqlenQ + right,
    // so right >= seqlenQ never does. (Only bounds strictly past are dropped, so a bound equal to
    // a length, such as causal's 0 with no queries, stays as given.)
    if let bound = left, bound > seqlenK { left = nil }
    if let bound = right, bound > seqlenQ { right = nil }
    self.left = left
    self.right = right
  }

  /// True when some key may be invisible to some query (a kernel must apply a mask).
  public var isMasking: Bool { left != nil || right != nil }

  /// Diagonal offset of bottom-right alignment.
  @inlinable public var offset: Int { seqlenK - seqlenQ }

  /// The visible keys of query row `i`, clamped to `0..<seqlenK`; empty when none is visible.
  @inlinable public func visibleKeys(forQuery i: Int) -> Range<Int> {
    let lower = left.map { max(0, i + offset - $0) } ?? 0
    let upper = right.map { min(seqlenK, i + offset + $0 + 1) } ?? seqlenK
    return lower < upper ? lower..<upper : 0..<0
  }

  /// The visible keys of any query in `rows`: the union of the rows' ranges (each row's range
  /// moves monotonically with `i`, so the union is the span of the first and last rows' bounds).
  @inlinable public func visibleKeys(forQueries rows: Range<Int>) -> Range<Int> {
    guard !rows.isEmpty else { return 0..<0 }
    let lower = left.map { max(0, rows.lowerBound + offset - $0) } ?? 0
    let upper = right.map { min(seqlenK, rows.upperBound - 1 + offset + $0 + 1) } ?? seqlenK
    return lower < upper ? lower..<upper : 0..<0
  }

  /// True when every query in `rows` sees every key in `keys`: such a tile needs no masking.
  @inlinable public func isFullyVisible(queries rows: Range<Int>, keys: Range<Int>) -> Bool {
    guard !rows.isEmpty, !keys.isEmpty else { return true }
    if let left, keys.lowerBound < rows.upperBound - 1 + offset - left { return false }
    if let right, keys.upperBound - 1 > rows.lowerBound + offset + right { return false }
    return true
  }

  /// Number of visible (query, key) pairs in one head: the FLOP count's unit.
  /// Saturates at `Int.max` (a count for FLOP figures, never an index).
  public var visibleScoreCount: Int {
    if !isMasking { return CheckedSize.product(seqlenQ, seqlenK) ?? Int.max }
    var total = 0
    for i in 0..<seqlenQ {
      guard let next = CheckedSize.sum(total, visibleKeys(forQuery: i).count) else { return Int.max }
      total = next
    }
    return total
  }
}
