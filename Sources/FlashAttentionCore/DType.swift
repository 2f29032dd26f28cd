/// Storage precision of a tensor. Arithmetic always accumulates in float32 (float64 in the
/// reference), whatever the storage.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case float32
  case float16
  case bfloat16
  /// 8-bit float, e4m3 without infinities (`float8_e4m3fn`: 1 sign, 4 exponent, 3 mantissa bits,
  /// largest finite 448). Storage for Q, K and V of the forward only, with float32 descale
  /// factors per (batch, kv head) (``FP8Descale``); the output is bfloat16 or float16.
  case float8E4M3 = "float8_e4m3fn"

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .float32: 4
    case .float16, .bfloat16: 2
    case .float8E4M3: 1
    }
  }

  /// Unit roundoff of the storage format, used to scale tolerances.
  public var unitRoundoff: Double {
    switch self {
    case .float32: 0x1p-24
    case .float16: 0x1p-11
    case .bfloat16: 0x1p-8
    case .float8E4M3: 0x1p-4
    }
  }

  /// Whether this is an 8-bit format (forward-only input storage, dequantised by descales).
  public var isFloat8: Bool { self == .float8E4M3 }

  public var description: String { rawValue }
}
