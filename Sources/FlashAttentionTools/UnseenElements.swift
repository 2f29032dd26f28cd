/// Where a correct result is exactly zero whatever the rounding: a query row that sees no key
/// has O = 0 and dQ = 0 (and LSE = -inf, which ``ErrorMetrics`` holds exactly), and a key that
/// no query row sees has dK = dV = 0. A tolerance on the whole tensor would let a small wrong
/// value through in those places, so every backend is held to them exactly.
struct UnseenElements {
  let shape: AttentionShape
  /// Query rows with no visible key.
  let emptyRows: [Int]
  /// The keys some query row sees (the rows' ranges move monotonically, so their union is one range).
  let seenKeys: Range<Int>

  init(_ problem: AttentionProblem) {
    let shape = problem.shape
    let mask = AttentionMask(options: problem.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    self.shape = shape
    self.emptyRows = (0..<shape.seqlenQ).filter { mask.visibleKeys(forQuery: $0).isEmpty }
    self.seenKeys = mask.visibleKeys(forQueries: 0..<shape.seqlenQ)
  }

  /// The failures of a `[batch, seqlen_q, heads_q, width]` result in the rows that see no key.
  func rowViolations(_ name: String, _ values: [Float], width: Int) -> [String] {
    let rows = emptyRows
    let nonzero = count(values, rows: rows, length: shape.seqlenQ, heads: shape.headsQ, width: width)
    guard nonzero > 0 else { return [] }
    return ["\(name): \(nonzero) elements of the \(rows.count) rows that see no key are not 0"]
  }

  /// The failures of a `[batch, seqlen_k, heads_kv, width]` gradient at the keys no row sees.
  func keyViolations(_ name: String, _ values: [Float], width: Int) -> [String] {
    let keys = (0..<shape.seqlenK).filter { !seenKeys.contains($0) }
    let nonzero = count(values, rows: keys, length: shape.seqlenK, heads: shape.headsKV, width: width)
    guard nonzero > 0 else { return [] }
    return ["\(name): \(nonzero) elements of the \(keys.count) keys no row sees are not 0"]
  }

  /// Elements other than ±0 (NaN included) in the given rows of a `[batch, length, heads, width]` tensor.
  private func count(_ values: [Float], rows: [Int], length: Int, heads: Int, width: Int) -> Int {
    var nonzero = 0
    for b in 0..<shape.batch {
      for row in rows {
        let base = (b * length + row) * heads * width
        for index in base..<(base + heads * width) where values[index] != 0 { nonzero += 1 }
      }
    }
    return nonzero
  }
}
