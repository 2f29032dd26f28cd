/// The float64 reference for packed batches: each sequence through `ReferenceAttention` on views
/// of its rows, gathered into packed arrays (`(total, heads, dim)` contiguous; LSE `(heads,
/// total)`). Rows outside every sequence or past `seqused` hold the no-key result: 0 and -inf.
package enum VarlenReference {
  package static func forward(
    q: TensorView, k: TensorView, v: TensorView, sequences: VarlenSequences, options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.ForwardResult {
    try perSequenceForward(q: q, k: k, v: v, sequences: sequences, options: options, ReferenceAttention.forward)
  }

  package static func backward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, sequences: VarlenSequences,
    options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.BackwardResult {
    try perSequenceBackward(
      q: q, k: k, v: v, dOut: dOut, sequences: sequences, options: options, ReferenceAttention.backward)
  }

  /// Runs `forward` on each sequence's rows (with its own row of a per-batch ALiBi table) and
  /// gathers the results into packed arrays.
  static func perSequenceForward(
    q: TensorView, k: TensorView, v: TensorView, sequences: VarlenSequences, options: AttentionOptions,
    _ forward: (TensorView, TensorView, TensorView, AttentionOptions) throws(FlashAttentionError) ->
      ReferenceAttention.ForwardResult
  ) throws(FlashAttentionError) -> ReferenceAttention.ForwardResult {
    let spans = try VarlenChecks.spans(sequences, totalQ: q.shape[0], totalK: k.shape[0])
    let (totalQ, heads, dimV) = (q.shape[0], q.shape[1], v.shape[2])
    var out = [Double](repeating: 0, count: totalQ * heads * dimV)
    var lse = [Double](repeating: -.infinity, count: heads * totalQ)
    for (index, span) in spans.enumerated() where span.queriesUsed > 0 {
      let result = try forward(
        q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
        k.sequenceRows(start: span.keyStart, count: span.keysUsed),
        v.sequenceRows(start: span.keyStart, count: span.keysUsed), options.sequence(index, headsQ: heads))
      out.replaceSubrange(
        (span.queryStart * heads * dimV)..<((span.queryStart + span.queriesUsed) * heads * dimV), with: result.out)
      for h in 0..<heads {
        for i in 0..<span.queriesUsed {
          lse[h * totalQ + span.queryStart + i] = result.lse[h * span.queriesUsed + i]
        }
      }
    }
    return ReferenceAttention.ForwardResult(out: out, lse: lse)
  }

  /// Runs `backward` on each sequence's rows and gathers the gradients into packed arrays.
  static func perSequenceBackward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, sequences: VarlenSequences,
    options: AttentionOptions,
    _ backward: (TensorView, TensorView, TensorView, TensorView, AttentionOptions) throws(FlashAttentionError) ->
      ReferenceAttention.BackwardResult
  ) throws(FlashAttentionError) -> ReferenceAttention.BackwardResult {
    let spans = try VarlenChecks.spans(sequences, totalQ: q.shape[0], totalK: k.shape[0])
    let (heads, headsKV, dim, dimV) = (q.shape[1], k.shape[1], q.shape[2], v.shape[2])
    var dQ = [Double](repeating: 0, count: q.shape[0] * heads * dim)
    var dK = [Double](repeating: 0, count: k.shape[0] * headsKV * dim)
    var dV = [Double](repeating: 0, count: k.shape[0] * headsKV * dimV)
    for (index, span) in spans.enumerated() where span.queriesUsed > 0 && span.keysUsed > 0 {
      let result = try backward(
        q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
        k.sequenceRows(start: span.keyStart, count: span.keysUsed),
        v.sequenceRows(start: span.keyStart, count: span.keysUsed),
        dOut.sequenceRows(start: span.queryStart, count: span.queriesUsed), options.sequence(index, headsQ: heads))
      dQ.replaceSubrange(
        (span.queryStart * heads * dim)..<((span.queryStart + span.queriesUsed) * heads * dim), with: result.dQ)
      dK.replaceSubrange(
        (span.keyStart * headsKV * dim)..<((span.keyStart + span.keysUsed) * headsKV * dim), with: result.dK)
      dV.replaceSubrange(
        (span.keyStart * headsKV * dimV)..<((span.keyStart + span.keysUsed) * headsKV * dimV), with: result.dV)
    }
    return ReferenceAttention.BackwardResult(dQ: dQ, dK: dK, dV: dV)
  }
}
