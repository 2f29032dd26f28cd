import FlashAttention

/// Engines the umbrella and CLI tests share.
package enum TestEngines {
  /// The CPU engine every host test runs on.
  package static func cpu() throws -> AttentionEngine {
    try AttentionEngine(backend: .cpu)
  }
}
