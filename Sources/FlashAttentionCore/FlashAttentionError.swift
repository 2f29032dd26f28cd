/// Every failure the library reports. Thrown (typed) at the public edge; each case names what
/// went wrong in terms a caller can act on.
public enum FlashAttentionError: Error, Sendable, Equatable, CustomStringConvertible {
  /// An argument has a value the operation cannot accept. `name` is the argument as the caller
  /// spells it (`"k.shape[3]"`, `"scale"`), `value` its offending value, `reason` the rule.
  case invalidArgument(name: String, value: String, reason: String)
  /// The request is valid but this backend does not implement it (a head dimension, a dtype).
  case unsupported(backend: String, feature: String)
  /// The backend cannot run on this machine, and why (no driver, no NVRTC, CPU lacks AVX2).
  case backendUnavailable(backend: String, reason: String)
  /// A memory allocation of `bytes` could not be satisfied.
  case outOfMemory(bytes: Int, context: String)
  /// A CUDA driver or NVRTC call failed; `message` holds the call and the driver's error name.
  case cuda(message: String)
  /// A kernel failed to compile; `log` is the compiler's log.
  case compilation(kernel: String, log: String)

  public var description: String {
    switch self {
    case let .invalidArgument(name, value, reason):
      "invalid argument \(name) = \(value): \(reason)"
    case let .unsupported(backend, feature):
      "\(backend) backend does not support \(feature)"
    case let .backendUnavailable(backend, reason):
      "\(backend) backend unavailable: \(reason)"
    case let .outOfMemory(bytes, context):
      "out of memory: \(context) needs \(ByteCountFormatting.string(bytes))"
    case let .cuda(message):
      "CUDA error: \(message)"
    case let .compilation(kernel, log):
      "kernel \(kernel) failed to compile:\n\(log)"
    }
  }
}

/// Human-readable byte counts for messages and tables ("1.50 GiB").
public enum ByteCountFormatting {
  public static func string(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format2: value) + " " + units[unit]
  }
}

extension String {
  /// Two decimals without Foundation (Core stays Foundation-free).
  init(format2 value: Double) {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    self = "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
  }
}
