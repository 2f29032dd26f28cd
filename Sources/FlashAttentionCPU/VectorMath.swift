/// Vectorized elementary functions on `SIMD16<Float>`, built so that LLVM keeps them in vector
/// registers: no libm calls, no scalarized conversions (the exponent of `2^n` is assembled with
/// the magic-number rounding trick and integer shifts on the bit pattern).
enum VectorMath {
  typealias Vector = SIMD16<Float>

  /// 2^x. Inputs below -126 give exactly 0 (so a masked -inf score gives probability 0);
  /// inputs above 127 saturate at 2^127 · 2^f. Relative error about 2e-7 (Cephes' exp2f
  /// polynomial on [-0.5, 0.5]).
  @_transparent
  static func exp2(_ x: Vector) -> Vector {
    let high = Vector(repeating: 127)
    return exp2(nonPositive: x.replacing(with: high, where: x .> high))
  }

  /// 2^x for x ≤ 127, the softmax case (arguments are at most 0 up to rounding): one clamp
  /// fewer than `exp2(_:)`.
  @_transparent
  static func exp2(nonPositive x: Vector) -> Vector {
    let low = Vector(repeating: -127)
    let clamped = x.replacing(with: low, where: x .< low)
    // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = Vector(repeating: 0x1.8p23)
    let shifted = clamped + magic
    let n = shifted - magic
    let f = clamped - n
    var p = Vector(repeating: 1.535336188319500e-4)
    p = Vector(repeating: 1.339887440266574e-3).addingProduct(p, f)
    p = Vector(repeating: 9.618437357674640e-3).addingProduct(p, f)
    p = Vector(repeating: 5.550332471162809e-2).addingProduct(p, f)
    p = Vector(repeating: 2.402264791363012e-1).addingProduct(p, f)
    p = Vector(repeating: 6.931472028550421e-1).addingProduct(p, f)
    p = Vector(repeating: 1).addingProduct(p, f)
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &<< 23
    let scaled = unsafeBitCast(unsafeBitCast(p, to: SIMD16<UInt32>.self) &+ bits, to: Vector.self)
    return scaled.replacing(with: 0, where: x .< Vector(repeating: -126))
  }

  /// tanh(x) = sign(x) · (1 − 2 / (e^{2|x|} + 1)); absolute error about 1e-7.
  @_transparent
  static func tanh(_ x: Vector) -> Vector {
    let magnitude = unsafeBitCast(
      unsafeBitCast(x, to: SIMD16<UInt32>.self) & SIMD16(repeating: 0x7FFF_FFFF), to: Vector.self)
    let e = exp2(magnitude * Vector(repeating: 2 * 1.442_695_04))
    let t = Vector(repeating: 1) - Vector(repeating: 2) / (e + Vector(repeating: 1))
    let signBit = unsafeBitCast(x, to: SIMD16<UInt32>.self) & SIMD16(repeating: 0x8000_0000)
    return unsafeBitCast(unsafeBitCast(t, to: SIMD16<UInt32>.self) | signBit, to: Vector.self)
  }

  /// Lane-wise maximum without the scalar chain that `pointwiseMax` can become.
  @_transparent
  static func max(_ a: Vector, _ b: Vector) -> Vector {
    a.replacing(with: b, where: b .> a)
  }
}
