// The umbrella re-exports the value types so `import FlashAttention` is all a caller needs.
@_exported import FlashAttentionCore
