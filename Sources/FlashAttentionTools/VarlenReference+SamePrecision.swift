/// The same-precision standard attention of a packed batch (the fp16/bf16 pass rule's yardstick,
/// see `VerificationRule`): `ReferenceAttention.samePrecisionForward/Backward` per sequence,
/// gathered by the same driver as the float64 results.
extension VarlenReference {
  package static func samePrecisionForward(
    q: TensorView, k: TensorView, v: TensorView, sequences: VarlenSequences, options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.ForwardResult {
    try perSequenceForward(
      q: q, k: k, v: v, sequences: sequences, options: options, ReferenceAttention.samePrecisionForward)
  }

  package static func samePrecisionBackward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, sequences: VarlenSequences,
    options: AttentionOptions
  ) throws(FlashAttentionError) -> ReferenceAttention.BackwardResult {
    try perSequenceBackward(
      q: q, k: k, v: v, dOut: dOut, sequences: sequences, options: options, ReferenceAttention.samePrecisionBackward)
  }
}
