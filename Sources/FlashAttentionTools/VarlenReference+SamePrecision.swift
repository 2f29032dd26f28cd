/// The same-precision standard attention of a packed batch (the fp16/bf16 pass rule's yardstick,
/// see `VerificationRule`): `ReferenceAttention.samePrecisionForward/Backward` per sequence,
/// gathered into packed arrays as `VarlenReference` gathers the float64 results.
extension VarlenReference {
  package static func samePrecisionForward(
    q: TensorView, k: TensorView, v: TensorView, sequences: VarlenSequences, options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.ForwardResult {
    let spans = try VarlenChecks.spans(sequences, totalQ: q.shape[0], totalK: k.shape[0])
    let (totalQ, heads, dimV) = (q.shape[0], q.shape[1], v.shape[2])
    var out = [Double](repeating: 0, count: totalQ * heads * dimV)
    var lse = [Double](repeating: -.infinity, count: heads * totalQ)
    for span in spans where span.queriesUsed > 0 {
      let result = try ReferenceAttention.samePrecisionForward(
        q: q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
        k: k.sequenceRows(start: span.keyStart, count: span.keysUsed),
        v: v.sequenceRows(start: span.keyStart, count: span.keysUsed), options: options)
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

  package static func samePrecisionBackward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, sequences: VarlenSequences,
    options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.BackwardResult {
    let spans = try VarlenChecks.spans(sequences, totalQ: q.shape[0], totalK: k.shape[0])
    let (heads, headsKV, dim, dimV) = (q.shape[1], k.shape[1], q.shape[2], v.shape[2])
    var dQ = [Double](repeating: 0, count: q.shape[0] * heads * dim)
    var dK = [Double](repeating: 0, count: k.shape[0] * headsKV * dim)
    var dV = [Double](repeating: 0, count: k.shape[0] * headsKV * dimV)
    for span in spans where span.queriesUsed > 0 && span.keysUsed > 0 {
      let result = try ReferenceAttention.samePrecisionBackward(
        q: q.sequenceRows(start: span.queryStart, count: span.queriesUsed),
        k: k.sequenceRows(start: span.keyStart, count: span.keysUsed),
        v: v.sequenceRows(start: span.keyStart, count: span.keysUsed),
        dOut: dOut.sequenceRows(start: span.queryStart, count: span.queriesUsed), options: options)
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
