/// Vectorized elementary functions on `SIMD16<Float>`, built so that LLVM keeps them in vector
/// registers: no libm calls, no scalarized conversions (the exponent of `2^n` is assembled with
/// the magic-number rounding trick and integer shifts on the bit pattern).
enum VectorMath {
  typealias Vector = SIMD16<Float>

  /// 2^x. Inputs of -127 and below (-inf included) give exactly 0, so a masked score gives
  /// probability 0; inputs above 127 saturate at 2^127 · 2^f. Relative error about 2e-7.
  @_transparent
  static func exp2(_ x: Vector) -> Vector {
    let high = Vector(repeating: 127)
    return exp2(nonPositive: x.replacing(with: high, where: x .> high))
  }

  /// 2^x for x ≤ 127, the softmax case (arguments are at most 0 up to rounding): one clamp
  /// fewer than `exp2(_:)`.
  ///
  /// Inputs of -127 and below give exactly +0: the clamp makes n = -127 and f = 0, so p = 1 and
  /// adding n · 2^23 to 1.0's bit pattern gives 0's. That is why no select after the
  /// polynomial is needed (the backward pass relies on P = 0 exactly where a score is -inf).
  /// Inputs in (-127, -126) give a positive value below 2^-126 (not 2^x, but far below any
  /// softmax term that matters). The polynomial is a degree-5 minimax fit of 2^f on
  /// [-0.5, 0.5] (relative error 9e-8; 1.9e-7 evaluated in Float), one FMA fewer than
  /// Cephes' degree 6 at the same 2-ULP class of accuracy (docs/perf-notes/cpu.md, item 12).
  @_transparent
  static func exp2(nonPositive x: Vector) -> Vector {
    let low = Vector(repeating: -127)
    let clamped = x.replacing(with: low, where: x .< low)
    // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = Vector(repeating: 0x1.8p23)
    let shifted = clamped + magic
    let n = shifted - magic
    let f = clamped - n
    var p = Vector(repeating: 1.326469588093460e-3)
    p = Vector(repeating: 9.671508334577084e-3).addingProduct(p, f)
    p = Vector(repeating: 5.550733953714371e-2).addingProduct(p, f)
    p = Vector(repeating: 2.402224242687225e-1).addingProduct(p, f)
    p = Vector(repeating: 6.931470036506653e-1).addingProduct(p, f)
    p = Vector(repeating: 1).addingProduct(p, f)
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &<< 23
    return unsafeBitCast(unsafeBitCast(p, to: SIMD16<UInt32>.self) &+ bits, to: Vector.self)
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
