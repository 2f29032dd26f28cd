import FlashAttentionCore

/// The element-wise steps of the backward pass on a score tile `S[query][key]` (leading
/// dimension `TileSizes.keys`): queries are rows and keys run along the 16 SIMD lanes, so that
/// the tile comes from `Q · Kᵀ` with `Kᵀ` packed once per key block instead of `Qᵀ` packed once
/// per (key block, query block) pair (docs/perf-notes/cpu.md, item 14). A query's LSE and D are
/// one broadcast scalar per row.
struct QueryScoreTile {
  typealias Vector = SIMD16<Float>

  let scores: UnsafeMutablePointer<Float>
  /// Query rows to process: the rows the products write (a multiple of `TileGEMM.rowBlock`),
  /// padding rows included so that every value later products read is finite.
  let rows: Int
  /// Keys that hold real scores.
  let keyCount: Int
  /// Key columns in use, a multiple of 16.
  let paddedKeys: Int
  static let leading = TileSizes.keys

  @inline(__always)
  private func row(_ query: Int) -> UnsafeMutablePointer<Float> {
    scores + query * QueryScoreTile.leading
  }

  /// `c · tanh(scale · s / c)` in base-2 units, as `ScoreTile.applySoftcap`; the tanh goes to
  /// `tanhOut` for the gradient's `1 − tanh²`.
  func applySoftcap(scale: Float, cap: Float, tanhOut: UnsafeMutablePointer<Float>) {
    let softcap = Softcap(scale: scale, cap: cap)
    for query in 0..<rows {
      for chunk in 0..<paddedKeys / 16 {
        let pointer = row(query) + chunk * 16
        let t = softcap.tanh(of: TileGEMM.load(pointer))
        TileGEMM.store(t, tanhOut + (pointer - scores))
        TileGEMM.store(softcap.capped(tanh: t), pointer)
      }
    }
  }

  /// Sets every score outside a query's visible keys to -inf: the mask's band when `mask` is
  /// given (the tile's origin is `firstQuery`, `firstKey`), and always the padding columns
  /// `keyCount..<paddedKeys`, which hold products with zero-filled `Kᵀ` columns.
  func applyMask(_ mask: AttentionMask?, firstQuery: Int, firstKey: Int) {
    for query in 0..<rows {
      var lower = 0
      var upper = keyCount
      if let mask {
        // Query i sees key j iff i + offset - left <= j <= i + offset + right.
        let i = firstQuery + query + mask.offset - firstKey
        if let left = mask.left { lower = min(keyCount, max(0, i - left)) }
        if let right = mask.right { upper = max(lower, min(keyCount, i + right + 1)) }
      }
      let pointer = row(query)
      pointer.update(repeating: -.infinity, count: lower)
      (pointer + upper).update(repeating: -.infinity, count: paddedKeys - upper)
    }
  }

  /// `P = 2^(s · unit − lse₂)` with `lse₂` the row's LSE in base 2 (+inf for padding rows and
  /// rows that saw no key, giving P = 0).
  func probabilities(unit: Float, lse2: UnsafePointer<Float>) {
    let unitVector = Vector(repeating: unit)
    for query in 0..<rows {
      let negativeLSE = Vector(repeating: -lse2[query])
      var pointer = row(query)
      for _ in 0..<paddedKeys / 16 {
        TileGEMM.store(
          VectorMath.exp2(nonPositive: negativeLSE.addingProduct(TileGEMM.load(pointer), unitVector)), pointer)
        pointer += 16
      }
    }
  }

  /// Turns `dP` (in `gradient`, same layout) into the gradient of the raw dot products:
  /// `dS = P · (dP − D) · scale`, times `1 − tanh²` under softcap (`ScoreGradient`, `Softcap`).
  func scoreGradient(
    gradient: UnsafeMutablePointer<Float>, rowD: UnsafePointer<Float>, scale: Float,
    tanh: UnsafePointer<Float>?
  ) {
    let scaleVector = Vector(repeating: scale)
    let one = Vector(repeating: 1)
    for query in 0..<rows {
      let d = Vector(repeating: rowD[query])
      for chunk in 0..<paddedKeys / 16 {
        let offset = query * QueryScoreTile.leading + chunk * 16
        var factor = one
        if let tanh { factor = Softcap.derivative(tanh: TileGEMM.load(tanh + offset)) }
        let ds = ScoreGradient.of(
          p: TileGEMM.load(scores + offset), dP: TileGEMM.load(gradient + offset), d: d, scale: scaleVector,
          factor: factor)
        TileGEMM.store(ds, gradient + offset)
      }
    }
  }
}
