// The tools build on the public API, so `import FlashAttentionTools` brings it along.
@_exported import FlashAttention
