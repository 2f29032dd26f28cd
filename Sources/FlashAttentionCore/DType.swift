/// Storage precision of a tensor. Arithmetic always accumulates in float32 (float64 in the
/// reference), whatever the storage.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case float32
  case float16
  case bfloat16

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .float32: 4
    case .float16, .bfloat16: 2
    }
  }

  /// Unit roundoff of the storage format, used to scale tolerances.
  public var unitRoundoff: Double {
    switch self {
    case .float32: 0x1p-24
    case .float16: 0x1p-11
    case .bfloat16: 0x1p-8
    }
  }

  public var description: String { rawValue }
}
