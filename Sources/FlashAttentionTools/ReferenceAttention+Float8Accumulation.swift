import FlashAttentionCore

extension ReferenceAttention {
  /// Per LSE row (`[batch, heads_q, seqlen_q]`), a bound on the score error of an fp8 forward on
  /// Hopper's tensor cores: their e4m3 products accumulate in a 22-bit float (8 exponent, 13
  /// mantissa bits, truncated: Khattak and Mikaitis, "Accurate models of NVIDIA tensor cores",
  /// 2025), once per k = 32 step of a wgmma, so a score `s = scale · q · k` may be off by up to
  /// `(d / 32) · 2^-13 · scale · Σ_c |q_c k_c|`, and the LSE, a smooth maximum of the row's
  /// scores, by at most the largest of its visible scores' bounds. No float32 rule can hold such
  /// an LSE (1e-3 absolute on rows near 10 was measured on an H100, 2026-12-06); this one, taken
  /// from the data, still fails a wrong row by orders of magnitude. 0 for rows that see no key.
  package static func float8ScoreErrorBound(
    q: TensorView, k: TensorView, v: TensorView, descale: FP8Descale, options: AttentionOptions
  ) throws(FlashAttentionError) -> [Double] {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    let inputs = try FP8Dequantisation.inputs(q: q, k: k, v: v, descale: descale, headsKV: shape.headsKV)
    let qs = inputs.q.floats(), ks = inputs.k.floats()
    let d = shape.headDim
    let scale = Double(options.resolvedScale(headDim: d))
    let perStep = Double(max(d / 32, 1)) * 0x1p-13
    let mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    var bounds = [Double](repeating: 0, count: shape.batch * shape.headsQ * shape.seqlenQ)
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        let kvh = shape.kvHead(forQueryHead: h)
        for i in 0..<shape.seqlenQ {
          let qBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * d
          var largest = 0.0
          for j in mask.visibleKeys(forQuery: i) {
            let kBase = ((b * shape.seqlenK + j) * shape.headsKV + kvh) * d
            var sum = 0.0
            for c in 0..<d { sum += abs(Double(qs[qBase + c]) * Double(ks[kBase + c])) }
            largest = max(largest, sum)
          }
          bounds[(b * shape.headsQ + h) * shape.seqlenQ + i] = perStep * scale * largest
        }
      }
    }
    return bounds
  }
}
