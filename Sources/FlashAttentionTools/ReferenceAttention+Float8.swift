import FlashAttentionCore

extension ReferenceAttention {
  /// The float64 reference of a call with descale factors: for float8_e4m3fn inputs, the
  /// forward of the dequantised inputs (`q · q_descale`, ...); otherwise the plain forward.
  package static func forward(
    q: TensorView, k: TensorView, v: TensorView, descale: FP8Descale, options: AttentionOptions
  ) throws(FlashAttentionError) -> ForwardResult {
    guard q.dtype.isFloat8 else { return try forward(q: q, k: k, v: v, options: options) }
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    let inputs = try FP8Dequantisation.inputs(q: q, k: k, v: v, descale: descale, headsKV: shape.headsKV)
    return try forward(q: inputs.q.view, k: inputs.k.view, v: inputs.v.view, options: options)
  }

  /// Standard attention as an fp8 pipeline computes it: the yardstick of the fp8 pass rule.
  ///
  /// On the dequantised inputs: float32 scores and softmax; P stored in e4m3 as the PV product
  /// reads it, scaled by 2^8 before rounding as FlashAttention-3 does (P = 2^8 · exp(s - max), so
  /// the e4m3 format's subnormal range is not spent on probabilities near 1/N); the row sum in
  /// float32 from the unrounded P; O = (P̃ V) / sum rounded to `outputDType`.
  ///
  /// FlashAttention-3's tests round the *normalized* P to e4m3 instead, which flushes every
  /// probability below 2^-10 to 0 and so makes the yardstick (and a rule of 3-4× it) looser as
  /// rows grow; this one is the stricter of the two.
  package static func samePrecisionForwardFloat8(
    q: TensorView, k: TensorView, v: TensorView, descale: FP8Descale, options: AttentionOptions,
    outputDType: DType = .bfloat16
  ) throws(FlashAttentionError) -> ForwardResult {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    let inputs = try FP8Dequantisation.inputs(q: q, k: k, v: v, descale: descale, headsKV: shape.headsKV)
    let problem = try SamePrecisionProblem(
      q: inputs.q.view, k: inputs.k.view, v: inputs.v.view, dOut: nil, options: options)
    let offset: Float = 256
    var out = [Double](repeating: 0, count: shape.oShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: shape.lseShape.reduce(1, *))
    withInputPointers(problem.q, problem.k, problem.v, problem.dOut) { inputs in
      for b in 0..<shape.batch {
        for h in 0..<shape.headsQ {
          let kvh = shape.kvHead(forQueryHead: h)
          for i in 0..<shape.seqlenQ {
            let row = problem.scores(inputs, b: b, h: h, i: i)
            guard !row.keys.isEmpty, let rowMax = row.s.max() else { continue }
            let p = row.s.map { Float(Double($0 - rowMax).expValue) * offset }
            var sum: Float = 0
            for value in p { sum += value }
            let stored = p.map { DType.float8E4M3.rounded($0) }
            let outBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * shape.headDimV
            for c in 0..<shape.headDimV {
              var acc: Float = 0
              for (slot, j) in row.keys.enumerated() {
                acc = acc.addingProduct(stored[slot], inputs.v[problem.vIndex(b, j, kvh) + c])
              }
              out[outBase + c] = Double(outputDType.rounded(acc / sum))
            }
            lse[(b * shape.headsQ + h) * shape.seqlenQ + i] = Double(rowMax) + Double(sum / offset).logValue
          }
        }
      }
    }
    return ForwardResult(out: out, lse: lse)
  }
}
