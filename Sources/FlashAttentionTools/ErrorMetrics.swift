/// How far a result is from the float64 reference: the measures the tests, `verify` and the
/// benchmarks share.
package struct ErrorMetrics: Sendable, CustomStringConvertible {
  /// ‖out − ref‖₂ / ‖ref‖₂ (absolute ‖out − ref‖₂ when ‖ref‖₂ = 0).
  package var relativeL2: Double
  /// max |out − ref|.
  package var maxAbsolute: Double
  /// Elements where the result or the reference is not finite and the two are not the same
  /// infinity: a NaN anywhere, an infinity where the reference is finite, a finite value where
  /// the reference is -inf (a row that sees no key must give exactly -inf). They count in
  /// neither norm.
  package var nonFiniteCount: Int
  /// True when every finite reference element is exactly 0: `relativeL2` is then an absolute
  /// L2 norm, and a tolerance must be absolute too.
  package var referenceIsZero: Bool

  package init(actual: [Float], expected: [Double]) {
    precondition(actual.count == expected.count, "ErrorMetrics: \(actual.count) vs \(expected.count) elements")
    var diffSquares = 0.0
    var refSquares = 0.0
    var maxAbs = 0.0
    var nonFinite = 0
    for index in 0..<actual.count {
      let a = Double(actual[index])
      let e = expected[index]
      if !a.isFinite || !e.isFinite {
        if !(e.isInfinite && a == e) { nonFinite += 1 }
        continue
      }
      let diff = a - e
      diffSquares += diff * diff
      refSquares += e * e
      maxAbs = Swift.max(maxAbs, abs(diff))
    }
    self.relativeL2 = refSquares > 0 ? (diffSquares / refSquares).squareRoot() : diffSquares.squareRoot()
    self.maxAbsolute = maxAbs
    self.nonFiniteCount = nonFinite
    self.referenceIsZero = refSquares == 0
  }

  /// True when no element is non-finite and the relative error is at most `tolerance`.
  package func passes(tolerance: Double) -> Bool { nonFiniteCount == 0 && relativeL2 <= tolerance }

  package var description: String {
    "rel=\(relativeL2) max=\(maxAbsolute)" + (nonFiniteCount > 0 ? " nonfinite=\(nonFiniteCount)" : "")
  }
}
