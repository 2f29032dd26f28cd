/// A validated forward call on a packed batch of sequences of different lengths
/// (FlashAttention's `flash_attn_varlen_func`).
///
/// q `(total_q, heads_q, head_dim)`, k `(total_k, heads_kv, head_dim)`, v `(total_k, heads_kv,
/// head_dim_v)`, out `(total_q, heads_q, head_dim_v)` in q's dtype, lse float32 `(heads_q,
/// total_q)`.
public struct VarlenForwardArguments: Sendable {
  public let q: TensorView
  public let k: TensorView
  public let v: TensorView
  public let out: TensorView
  public let lse: TensorView
  public let sequences: VarlenSequences
  /// Sequence count as `batch`, the maximum lengths as `seqlenQ`/`seqlenK`.
  public let shape: AttentionShape
  public let options: AttentionOptions
  public let scale: Float
  /// The checked spans when the index data lives on the host (nil for device index data).
  public let spans: [SequenceSpan]?

  public init(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView, sequences: VarlenSequences,
    options: AttentionOptions
  ) throws(FlashAttentionError) {
    let shape = try VarlenChecks.shape(q: q, k: k, v: v, sequences: sequences)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    try TensorChecks.expect(out, "out", shape: [q.shape[0], shape.headsQ, shape.headDimV], dtype: q.dtype, location: q.location)
    try TensorChecks.expect(lse, "lse", shape: [shape.headsQ, q.shape[0]], dtype: .float32, location: q.location)
    self.q = q
    self.k = k
    self.v = v
    self.out = out
    self.lse = lse
    self.sequences = sequences
    self.shape = shape
    self.options = options
    self.scale = options.resolvedScale(headDim: shape.headDim)
    spans =
      q.location == .host ? try VarlenChecks.spans(sequences, totalQ: q.shape[0], totalK: k.shape[0]) : nil
  }

  /// Sequence `span`'s problem as an ordinary forward call on views of the packed tensors.
  /// `index` is the sequence's batch index: it picks its row of a `(batch, heads_q)` ALiBi table
  /// and its dropout coordinate.
  public func sequence(_ span: SequenceSpan, index: Int = 0) throws(FlashAttentionError) -> ForwardArguments {
    try ForwardArguments(
      q: q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      k: k.sequenceRows(start: span.keyStart, count: span.keysUsed),
      v: v.sequenceRows(start: span.keyStart, count: span.keysUsed),
      out: out.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      lse: lse.sequenceColumns(start: span.queryStart, count: span.queriesUsed),
      options: options.sequence(index, headsQ: shape.headsQ))
  }
}

/// A validated backward call on a packed batch (`flash_attn_varlen_func`'s gradient): dout, dq,
/// dk, dv shaped like out, q, k, v.
public struct VarlenBackwardArguments: Sendable {
  public let forward: VarlenForwardArguments
  public let dOut: TensorView
  public let dQ: TensorView
  public let dK: TensorView
  public let dV: TensorView

  public init(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView, dOut: TensorView, dQ: TensorView,
    dK: TensorView, dV: TensorView, sequences: VarlenSequences, options: AttentionOptions
  ) throws(FlashAttentionError) {
    forward = try VarlenForwardArguments(q: q, k: k, v: v, out: out, lse: lse, sequences: sequences, options: options)
    let location = q.location
    try TensorChecks.expect(dOut, "dout", shape: out.shape, dtype: q.dtype, location: location)
    try TensorChecks.expect(dQ, "dq", shape: q.shape, dtype: q.dtype, location: location)
    try TensorChecks.expect(dK, "dk", shape: k.shape, dtype: q.dtype, location: location)
    try TensorChecks.expect(dV, "dv", shape: v.shape, dtype: q.dtype, location: location)
    self.dOut = dOut
    self.dQ = dQ
    self.dK = dK
    self.dV = dV
  }

  /// Sequence `span`'s gradient problem on views of the packed tensors.
  public func sequence(_ span: SequenceSpan, index: Int = 0) throws(FlashAttentionError) -> BackwardArguments {
    let f = forward
    return try BackwardArguments(
      q: f.q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      k: f.k.sequenceRows(start: span.keyStart, count: span.keysUsed),
      v: f.v.sequenceRows(start: span.keyStart, count: span.keysUsed),
      out: f.out.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      lse: f.lse.sequenceColumns(start: span.queryStart, count: span.queriesUsed),
      dOut: dOut.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      dQ: dQ.sequenceRows(start: span.queryStart, count: span.queriesUsed),
      dK: dK.sequenceRows(start: span.keyStart, count: span.keysUsed),
      dV: dV.sequenceRows(start: span.keyStart, count: span.keysUsed),
      options: f.options.sequence(index, headsQ: f.shape.headsQ))
  }
}
