import FlashAttentionCore

/// The element-wise steps of the forward pass on a transposed score tile `Sᵀ[key][query]`
/// (leading dimension `TileSizes.queries`): softcap, masking and the online softmax. Queries run
/// along the 16 SIMD lanes, so the row statistics (max, sum) of 16 queries are updated with
/// vertical vector operations. (The backward pass works on `S` itself: `QueryScoreTile`.)
struct ScoreTile {
  typealias Vector = SIMD16<Float>

  let scores: UnsafeMutablePointer<Float>
  /// Keys (tile rows) that hold real scores.
  let keyCount: Int
  /// Query columns in use, a multiple of 16.
  let paddedQueries: Int
  static let leading = TileSizes.queries

  @inline(__always)
  func row(_ key: Int, _ chunk: Int) -> UnsafeMutablePointer<Float> {
    scores + key * ScoreTile.leading + chunk * 16
  }

  /// Replaces each raw dot product `s` by `c · tanh(scale · s / c) · log2(e)` (Gemma-2 softcap,
  /// in base-2 units).
  func applySoftcap(scale: Float, cap: Float) {
    let softcap = Softcap(scale: scale, cap: cap)
    for key in 0..<keyCount {
      for chunk in 0..<paddedQueries / 16 {
        let pointer = row(key, chunk)
        TileGEMM.store(softcap.capped(tanh: softcap.tanh(of: TileGEMM.load(pointer))), pointer)
      }
    }
  }

  /// Sets the scores of invisible (query, key) pairs to -inf. `firstQuery`/`firstKey` are the
  /// tile's origin in the sequence; only queries below `queryCount` are touched. The queries
  /// that see one key form a contiguous range, so each tile row is two runs of stores.
  func applyMask(_ mask: AttentionMask, firstQuery: Int, queryCount: Int, firstKey: Int) {
    for key in 0..<keyCount {
      // Key j is visible to query i iff j - offset - right <= i <= j - offset + left.
      let j = firstKey + key - mask.offset
      let lower = mask.right.map { min(queryCount, max(0, j - $0 - firstQuery)) } ?? 0
      let upper = mask.left.map { max(lower, min(queryCount, j + $0 + 1 - firstQuery)) } ?? queryCount
      let pointer = scores + key * ScoreTile.leading
      pointer.update(repeating: -.infinity, count: lower)
      (pointer + upper).update(repeating: -.infinity, count: queryCount - upper)
    }
  }

  /// One online-softmax step: updates the running max `rowMax` (in score units) and sum
  /// `rowSum` of every query, turns the tile into unnormalized probabilities
  /// `2^((s − max) · unit)`, and writes each query's rescale factor for its output row to
  /// `alpha`. Returns whether any factor differs from 1 (the max grew somewhere).
  func softmaxStep(
    unit: Float, rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
    alpha: UnsafeMutablePointer<Float>
  ) -> Bool {
    let unitVector = Vector(repeating: unit)
    let negativeInfinity = Vector(repeating: -.infinity)
    var grew = false
    for chunk in 0..<paddedQueries / 16 {
      let oldMax = TileGEMM.load(rowMax + chunk * 16)
      var newMax = oldMax
      for key in 0..<keyCount { newMax = VectorMath.max(newMax, TileGEMM.load(row(key, chunk))) }
      // A query that has seen only masked keys keeps max -inf; subtracting 0 keeps its
      // probabilities at exactly 0 instead of NaN.
      let reference = newMax.replacing(with: 0, where: newMax .== negativeInfinity)
      let offset = -reference * unitVector
      var sum = Vector()
      for key in 0..<keyCount {
        let pointer = row(key, chunk)
        let p = VectorMath.exp2(nonPositive: offset.addingProduct(TileGEMM.load(pointer), unitVector))
        TileGEMM.store(p, pointer)
        sum += p
      }
      let factor = VectorMath.exp2(nonPositive: (oldMax - reference) * unitVector)
      grew = grew || any(factor .!= Vector(repeating: 1))
      TileGEMM.store(factor, alpha + chunk * 16)
      TileGEMM.store(sum.addingProduct(TileGEMM.load(rowSum + chunk * 16), factor), rowSum + chunk * 16)
      TileGEMM.store(newMax, rowMax + chunk * 16)
    }
    return grew
  }
}

extension AttentionMask {
  /// For a tile whose rows are keys from `firstKey` and whose columns are queries from
  /// `firstQuery`: the queries each key row is visible to, in tile coordinates.
  func queriesPerKey(firstQuery: Int, firstKey: Int) -> TileGEMM.Band {
    let origin = firstKey - offset - firstQuery
    return TileGEMM.Band(low: right.map { origin - $0 }, high: left.map { origin + $0 })
  }

  /// For a tile whose rows are queries from `firstQuery` and whose summed index runs over keys
  /// from `firstKey`: the keys each query row sees, in tile coordinates.
  func keysPerQuery(firstQuery: Int, firstKey: Int) -> TileGEMM.Band {
    let origin = firstQuery + offset - firstKey
    return TileGEMM.Band(low: left.map { origin - $0 }, high: right.map { origin + $0 })
  }
}
