/// Standard attention in float64 that materializes one row of S and P at a time: the ground
/// truth every kernel is compared with. Slow by design; use it on small problems.
public enum ReferenceAttention {
  public struct ForwardResult: Sendable {
    /// `[batch, seqlen_q, heads_q, head_dim_v]`, row-major.
    public var out: [Double]
    /// `[batch, heads_q, seqlen_q]`; -inf for a row with no visible key.
    public var lse: [Double]
  }

  public struct BackwardResult: Sendable {
    public var dQ: [Double]
    public var dK: [Double]
    public var dV: [Double]
  }

  /// Scores of one query row against its visible keys, after scale, softcap and the ALiBi bias
  /// (FlashAttention-2's order: the bias is added to the capped score).
  private static func scores(
    q: TensorView, k: TensorView, b: Int, i: Int, h: Int, kvh: Int, keys: Range<Int>,
    shape: AttentionShape, scale: Double, softcap: Double, options: AttentionOptions
  ) -> (capped: [Double], tanhTerm: [Double]) {
    let slope = options.alibiSlopes.map { Double($0.slope(batch: b, head: h, headsQ: shape.headsQ)) } ?? 0
    var capped = [Double](repeating: 0, count: keys.count)
    var tanhTerm = [Double](repeating: 0, count: keys.count)
    let qBase = q.offset([b, i, h, 0])
    for (slot, j) in keys.enumerated() {
      let kBase = k.offset([b, j, kvh, 0])
      var dot = 0.0
      for c in 0..<shape.headDim {
        dot += Double(q.loadFloat(atElementOffset: qBase + c)) * Double(k.loadFloat(atElementOffset: kBase + c))
      }
      var s = dot * scale
      if softcap > 0 {
        let t = (s / softcap).tanhValue
        tanhTerm[slot] = t
        s = softcap * t
      }
      if slope != 0 { s -= slope * Double(abs(i + shape.seqlenK - shape.seqlenQ - j)) }
      capped[slot] = s
    }
    return (capped, tanhTerm)
  }

  public static func forward(
    q: TensorView, k: TensorView, v: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> ForwardResult {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    let scale = Double(options.resolvedScale(headDim: shape.headDim))
    let softcap = Double(options.softcap)
    let mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    let dropout = options.activeDropout.map { DropoutMask($0, headsQ: shape.headsQ) }
    var out = [Double](repeating: 0, count: shape.oShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: shape.lseShape.reduce(1, *))
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        let kvh = shape.kvHead(forQueryHead: h)
        for i in 0..<shape.seqlenQ {
          let keys = mask.visibleKeys(forQuery: i)
          guard !keys.isEmpty else { continue }
          let s = scores(
            q: q, k: k, b: b, i: i, h: h, kvh: kvh, keys: keys, shape: shape, scale: scale,
            softcap: softcap, options: options
          ).capped
          let rowMax = s.max()!
          let p = s.map { ($0 - rowMax).expValue }
          let sum = p.reduce(0, +)
          let outBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * shape.headDimV
          for (slot, j) in keys.enumerated() {
            let weight = p[slot] / sum * (dropout?.factor(batch: b, head: h, query: i, key: j) ?? 1)
            let vBase = v.offset([b, j, kvh, 0])
            for c in 0..<shape.headDimV {
              out[outBase + c] += weight * Double(v.loadFloat(atElementOffset: vBase + c))
            }
          }
          lse[(b * shape.headsQ + h) * shape.seqlenQ + i] = rowMax + sum.logValue
        }
      }
    }
    return ForwardResult(out: out, lse: lse)
  }

  /// Gradients of `sum(out * dOut)` with respect to q, k and v.
  public static func backward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> BackwardResult {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    try TensorChecks.expect(dOut, "dout", shape: shape.oShape, dtype: dOut.dtype, location: .host)
    let scale = Double(options.resolvedScale(headDim: shape.headDim))
    let softcap = Double(options.softcap)
    let mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    let dropout = options.activeDropout.map { DropoutMask($0, headsQ: shape.headsQ) }
    var dQ = [Double](repeating: 0, count: shape.qShape.reduce(1, *))
    var dK = [Double](repeating: 0, count: shape.kShape.reduce(1, *))
    var dV = [Double](repeating: 0, count: shape.vShape.reduce(1, *))
    let d = shape.headDim
    let dv = shape.headDimV
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        let kvh = shape.kvHead(forQueryHead: h)
        for i in 0..<shape.seqlenQ {
          let keys = mask.visibleKeys(forQuery: i)
          guard !keys.isEmpty else { continue }
          let (s, tanhTerm) = scores(
            q: q, k: k, b: b, i: i, h: h, kvh: kvh, keys: keys, shape: shape, scale: scale,
            softcap: softcap, options: options)
          let rowMax = s.max()!
          var p = s.map { ($0 - rowMax).expValue }
          let sum = p.reduce(0, +)
          for slot in p.indices { p[slot] /= sum }
          let dOutBase = dOut.offset([b, i, h, 0])
          let dOutRow = (0..<dv).map { Double(dOut.loadFloat(atElementOffset: dOutBase + $0)) }
          // With dropout's factor z_ij (1 without): dP_ij = z_ij · dO_i · v_j, D_i = Σ_j P_ij dP_ij,
          // and dV_j gets z_ij · P_ij · dO_i.
          var dP = [Double](repeating: 0, count: keys.count)
          var factor = [Double](repeating: 1, count: keys.count)
          var rowD = 0.0
          for (slot, j) in keys.enumerated() {
            let vBase = v.offset([b, j, kvh, 0])
            var dot = 0.0
            for c in 0..<dv { dot += dOutRow[c] * Double(v.loadFloat(atElementOffset: vBase + c)) }
            if let dropout { factor[slot] = dropout.factor(batch: b, head: h, query: i, key: j) }
            dot *= factor[slot]
            dP[slot] = dot
            rowD += p[slot] * dot
          }
          let qBase = q.offset([b, i, h, 0])
          let dQBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * d
          for (slot, j) in keys.enumerated() {
            var dS = p[slot] * (dP[slot] - rowD)
            if softcap > 0 { dS *= 1 - tanhTerm[slot] * tanhTerm[slot] }
            dS *= scale
            let kBase = k.offset([b, j, kvh, 0])
            let dKBase = ((b * shape.seqlenK + j) * shape.headsKV + kvh) * d
            for c in 0..<d {
              dQ[dQBase + c] += dS * Double(k.loadFloat(atElementOffset: kBase + c))
              dK[dKBase + c] += dS * Double(q.loadFloat(atElementOffset: qBase + c))
            }
            let dVBase = ((b * shape.seqlenK + j) * shape.headsKV + kvh) * dv
            for c in 0..<dv { dV[dVBase + c] += p[slot] * factor[slot] * dOutRow[c] }
          }
        }
      }
    }
    return BackwardResult(dQ: dQ, dK: dK, dV: dV)
  }
}
