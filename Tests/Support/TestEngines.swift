import FlashAttention

/// Engines and checks the umbrella and CLI tests share.
public enum TestEngines {
  /// The CPU engine every host test runs on.
  public static func cpu() throws -> AttentionEngine {
    try AttentionEngine(backend: .cpu)
  }
}

extension VerificationResult {
  /// A one-line account of a result for failure messages (every check, the seed, any error).
  public var summary: String {
    var text = "\(name) \(dtype) [\(shape)] \(options) on \(backend), seed \(seed):"
    if let error { text += " error: \(error)" }
    for check in checks {
      text += " \(check.name) rel=\(check.relativeL2) tol=\(check.tolerance) nonfinite=\(check.nonFinite)"
    }
    return text
  }
}
