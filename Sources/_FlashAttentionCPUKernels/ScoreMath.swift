/// Element-wise score math shared by the forward's `ScoreTile` and the backward's
/// `QueryScoreTile`, 16 scores at a time.
struct Softcap {
  typealias Vector = SIMD16<Float>

  /// `scale / cap`: raw dot product to the tanh's argument.
  let inner: Vector
  /// `cap · log2(e)`: tanh to the capped score in base-2 units.
  let outer: Vector

  init(scale: Float, cap: Float) {
    inner = Vector(repeating: scale / cap)
    outer = Vector(repeating: cap * log2e)
  }

  /// `tanh(scale · s / c)` of raw dot products `s` (the backward pass keeps it for `1 − tanh²`).
  @_transparent
  func tanh(of raw: Vector) -> Vector { VectorMath.tanh(raw * inner) }

  /// The capped score `c · tanh(…) · log2(e)` from its tanh (Gemma-2 softcap, base-2 units).
  @_transparent
  func capped(tanh t: Vector) -> Vector { t * outer }

  /// `1 − tanh²`: the factor the softcap puts on a score's gradient.
  @_transparent
  static func derivative(tanh t: Vector) -> Vector { Vector(repeating: 1) - t * t }
}

enum ScoreGradient {
  typealias Vector = SIMD16<Float>

  /// dS of 16 pairs: `P · (dP − D) · scale · factor`, with `factor` the softcap's
  /// `1 − tanh²` (`Softcap.derivative`) or 1. Exactly 0 where P = 0, whatever the rest holds:
  /// a banded product leaves dP (and the tanh of S) unwritten under masked entries, and stale
  /// scratch there can be NaN (0 · NaN is NaN), so this selects, last, instead of multiplying.
  @_transparent
  static func of(p: Vector, dP: Vector, d: Vector, scale: Vector, factor: Vector) -> Vector {
    let ds = p * (dP - d) * scale * factor
    return ds.replacing(with: Vector(repeating: 0), where: p .== Vector(repeating: 0))
  }
}
