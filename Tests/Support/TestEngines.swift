import FlashAttention

/// Engines the umbrella and CLI tests share.
public enum TestEngines {
  /// The CPU engine every host test runs on.
  public static func cpu() throws -> AttentionEngine {
    try AttentionEngine(backend: .cpu)
  }
}
