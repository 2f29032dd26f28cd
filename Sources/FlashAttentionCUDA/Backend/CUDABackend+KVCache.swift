import FlashAttentionCore

extension CUDABackend {
  /// KV-cache attention on the GPU is not in this branch (its kernels come from the decode work);
  /// the engine reports it as unsupported rather than running anything.
  public func kvCacheForward(_ arguments: KVCacheForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "KV-cache attention (flash_attn_with_kvcache) on the GPU")
  }
}
