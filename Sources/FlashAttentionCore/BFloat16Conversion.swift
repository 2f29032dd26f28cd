/// bfloat16 is the upper half of an IEEE float32. Swift has no bfloat16 type, so these two
/// functions are the only place the bit layout is spelled out.
public enum BFloat16Conversion {
  /// Rounds to nearest even; NaN stays NaN (quiet).
  @inlinable @inline(__always)
  public static func bits(from value: Float) -> UInt16 {
    let raw = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: raw >> 16) | 0x0040 }
    let roundingBias: UInt32 = 0x7FFF + ((raw >> 16) & 1)
    return UInt16(truncatingIfNeeded: (raw &+ roundingBias) >> 16)
  }

  @inlinable @inline(__always)
  public static func float(fromBits bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }
}
