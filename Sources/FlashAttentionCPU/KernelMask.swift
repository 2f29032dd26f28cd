import FlashAttentionCore

extension AttentionMask {
  /// The same mask with window bounds no larger than `seqlenQ + seqlenK`, which changes no
  /// visible pair (a bound that large already reaches past every key) and keeps every
  /// `i + offset ± bound` the kernels form far from `Int`'s limits, whatever bound a caller gave.
  var clampedForKernels: AttentionMask {
    let limit = seqlenQ + seqlenK
    let window = SlidingWindow(left: left.map { min($0, limit) }, right: right.map { min($0, limit) })
    return AttentionMask(options: AttentionOptions(window: window), seqlenQ: seqlenQ, seqlenK: seqlenK)
  }

  /// For a tile whose rows are keys from `firstKey` and whose columns are queries from
  /// `firstQuery`: the queries each key row is visible to, in tile coordinates.
  func queriesPerKey(firstQuery: Int, firstKey: Int) -> TileBand {
    let origin = firstKey - offset - firstQuery
    return TileBand(low: right.map { origin - $0 }, high: left.map { origin + $0 })
  }

  /// For a tile whose rows are queries from `firstQuery` and whose columns (or summed index) run
  /// over keys from `firstKey`: the keys each query row sees, in tile coordinates.
  func keysPerQuery(firstQuery: Int, firstKey: Int) -> TileBand {
    let origin = firstQuery + offset - firstKey
    return TileBand(low: left.map { origin - $0 }, high: right.map { origin + $0 })
  }
}
