/// float8 e4m3 without infinities (`float8_e4m3fn`, the OCP FP8 format FlashAttention-3 reads):
/// 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; subnormals down to 2^-9, largest finite
/// ±448, NaN as `S.1111.111` and no infinity. Swift has no such type, so the bit layout lives here.
public enum Float8E4M3Conversion {
  /// The largest finite value.
  public static let greatestFinite: Float = 448

  /// Rounds to nearest even and saturates: a finite value beyond ±448 (and ±infinity) becomes
  /// ±448, like PTX's `cvt.rn.satfinite.e4m3x2.f32`; NaN stays NaN.
  @inlinable
  public static func bits(from value: Float) -> UInt8 {
    if value.isNaN { return 0x7F }
    let sign: UInt8 = value.sign == .minus ? 0x80 : 0
    let magnitude = value.magnitude
    if magnitude > greatestFinite { return sign | 0x7E }
    if magnitude < 0x1p-6 {
      // Subnormal: multiples of 2^-9; rounding up to 8 * 2^-9 carries into the smallest normal.
      let steps = (magnitude * 0x1p9).rounded(.toNearestOrEven)
      return sign | UInt8(steps)
    }
    var exponent = Int(magnitude.exponent)
    var mantissa = ((magnitude.significand - 1) * 8).rounded(.toNearestOrEven)
    if mantissa == 8 {
      mantissa = 0
      exponent += 1
    }
    let code = UInt8(exponent + 7) << 3 | UInt8(mantissa)
    return sign | min(code, 0x7E)
  }

  @inlinable
  public static func float(fromBits bits: UInt8) -> Float {
    let sign: Float = bits & 0x80 != 0 ? -1 : 1
    let exponent = Int((bits >> 3) & 0xF)
    let mantissa = Float(bits & 0x7)
    if exponent == 0 { return sign * mantissa * 0x1p-9 }
    if exponent == 15 && bits & 0x7 == 7 { return .nan }
    return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
  }
}
