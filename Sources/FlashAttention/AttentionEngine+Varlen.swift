extension AttentionEngine {
  /// Forward on a packed batch of sequences of different lengths (FlashAttention's
  /// `flash_attn_varlen_func`).
  ///
  /// - Parameters:
  ///   - q: `(total_q, heads_q, head_dim)`; sequence `b` is rows `cu_seqlens_q[b] ..< cu_seqlens_q[b+1]`.
  ///   - k: `(total_k, heads_kv, head_dim)`.
  ///   - v: `(total_k, heads_kv, head_dim_v)`.
  ///   - out: `(total_q, heads_q, head_dim_v)`, q's dtype.
  ///   - lse: float32 `(heads_q, total_q)`.
  ///   - sequences: the prefix sums, maximum lengths and optional used lengths.
  ///   - stream: for CUDA memory, the caller's stream (see `forward`).
  /// - Throws: `FlashAttentionError` naming the first invalid argument, or the backend's failure.
  public func varlenForward(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView, sequences: VarlenSequences,
    options: AttentionOptions = AttentionOptions(), stream: CallerStream? = nil
  ) throws(FlashAttentionError) {
    let arguments = try VarlenForwardArguments(
      q: q, k: k, v: v, out: out, lse: lse, sequences: sequences, options: options)
    try variableLengthBackend().varlenForward(arguments, stream: stream)
  }

  /// The gradient of `varlenForward`: dq, dk, dv shaped like q, k, v (dk and dv summed over
  /// each GQA group).
  public func varlenBackward(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView, dOut: TensorView,
    dQ: TensorView, dK: TensorView, dV: TensorView, sequences: VarlenSequences,
    options: AttentionOptions = AttentionOptions(), stream: CallerStream? = nil
  ) throws(FlashAttentionError) {
    let arguments = try VarlenBackwardArguments(
      q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, sequences: sequences,
      options: options)
    try variableLengthBackend().varlenBackward(arguments, stream: stream)
  }

  /// Attention of new queries against a KV cache (FlashAttention's `flash_attn_with_kvcache`),
  /// after appending `kNew`/`vNew` to the cache in place when given. Forward only.
  ///
  /// - Parameters:
  ///   - q: `(batch, seqlen_q, heads_q, head_dim)`.
  ///   - cache: the keys and values, their lengths, and the page table of a paged cache.
  ///   - kNew: optional `(batch, seqlen_new, heads_kv, head_dim)` written at `cache.seqlens[b]`.
  ///   - vNew: optional `(batch, seqlen_new, heads_kv, head_dim_v)`, with `kNew`.
  ///   - out: `(batch, seqlen_q, heads_q, head_dim_v)`.
  ///   - lse: float32 `(batch, heads_q, seqlen_q)`.
  ///   - numSplits: key chunks per sequence merged by LSE (0: the backend chooses).
  public func forward(
    q: TensorView, cache: KVCache, kNew: TensorView? = nil, vNew: TensorView? = nil, out: TensorView,
    lse: TensorView, options: AttentionOptions = AttentionOptions(), numSplits: Int = 0,
    stream: CallerStream? = nil
  ) throws(FlashAttentionError) {
    let arguments = try KVCacheForwardArguments(
      q: q, cache: cache, kNew: kNew, vNew: vNew, out: out, lse: lse, options: options, numSplits: numSplits)
    if arguments.shape.batch == 0 { return }
    try variableLengthBackend().kvCacheForward(arguments, stream: stream)
  }

  private func variableLengthBackend() throws(FlashAttentionError) -> any VariableLengthBackend {
    guard let backend = backend as? any VariableLengthBackend else {
      throw .unsupported(backend: backend.name, feature: "variable-length batches and KV caches")
    }
    return backend
  }
}
