/// Standard attention in float64 that materializes one row of S and P at a time: the ground
/// truth every kernel is compared with. Slow by design; use it on small problems.
///
/// The inputs are widened to contiguous arrays once and the inner loops index pointers: the
/// tests run it in debug builds, where a strided load, a generic iterator or an array's `+=`
/// per multiply-add costs several times the arithmetic.
package enum ReferenceAttention {
  package struct ForwardResult: Sendable {
    /// `[batch, seqlen_q, heads_q, head_dim_v]`, row-major.
    package var out: [Double]
    /// `[batch, heads_q, seqlen_q]`; -inf for a row with no visible key.
    package var lse: [Double]
  }

  package struct BackwardResult: Sendable {
    package var dQ: [Double]
    package var dK: [Double]
    package var dV: [Double]
  }

  package static func forward(
    q: TensorView, k: TensorView, v: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> ForwardResult {
    let problem = try ReferenceProblem(q: q, k: k, v: v, dOut: nil, options: options)
    let shape = problem.shape
    let dv = shape.headDimV
    var out = [Double](repeating: 0, count: shape.oShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: shape.lseShape.reduce(1, *))
    withInputPointers(problem.q, problem.k, problem.v, problem.dOut) { inputs in
      out.withElementPointer { out in
        for b in 0..<shape.batch {
          for h in 0..<shape.headsQ {
            let kvh = shape.kvHead(forQueryHead: h)
            for i in 0..<shape.seqlenQ {
              let keys = problem.mask.visibleKeys(forQuery: i)
              guard !keys.isEmpty else { continue }
              let s = problem.scores(inputs, b: b, i: i, h: h, kvh: kvh, keys: keys).capped
              let rowMax = s.max()!
              let p = s.map { ($0 - rowMax).expValue }
              let sum = p.reduce(0, +)
              let outRow = out + problem.qoIndex(b, i, h, width: dv)
              for slot in 0..<keys.count {
                let weight = p[slot] / sum * problem.dropoutFactor(b, h, i, keys.lowerBound + slot)
                let vRow = inputs.v + problem.kvIndex(b, keys.lowerBound + slot, kvh, width: dv)
                for c in 0..<dv { outRow[c] += weight * vRow[c] }
              }
              lse[(b * shape.headsQ + h) * shape.seqlenQ + i] = rowMax + sum.logValue
            }
          }
        }
      }
    }
    return ForwardResult(out: out, lse: lse)
  }

  /// Gradients of `sum(out * dOut)` with respect to q, k and v.
  package static func backward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> BackwardResult {
    let problem = try ReferenceProblem(q: q, k: k, v: v, dOut: dOut, options: options)
    let shape = problem.shape
    let d = shape.headDim
    let dv = shape.headDimV
    var dQ = [Double](repeating: 0, count: shape.qShape.reduce(1, *))
    var dK = [Double](repeating: 0, count: shape.kShape.reduce(1, *))
    var dV = [Double](repeating: 0, count: shape.vShape.reduce(1, *))
    withInputPointers(problem.q, problem.k, problem.v, problem.dOut) { inputs in
      dQ.withElementPointer { dQ in
        dK.withElementPointer { dK in
          dV.withElementPointer { dV in
            for b in 0..<shape.batch {
              for h in 0..<shape.headsQ {
                let kvh = shape.kvHead(forQueryHead: h)
                for i in 0..<shape.seqlenQ {
                  let keys = problem.mask.visibleKeys(forQuery: i)
                  guard !keys.isEmpty else { continue }
                  let (s, tanhTerm) = problem.scores(inputs, b: b, i: i, h: h, kvh: kvh, keys: keys)
                  let rowMax = s.max()!
                  var p = s.map { ($0 - rowMax).expValue }
                  let sum = p.reduce(0, +)
                  for slot in p.indices { p[slot] /= sum }
                  let dOutRow = inputs.dOut + problem.qoIndex(b, i, h, width: dv)
                  // With dropout's factor z_ij (1 without): dP_ij = z_ij · dO_i · v_j,
                  // D_i = Σ_j P_ij dP_ij, and dV_j gets z_ij · P_ij · dO_i.
                  var dP = [Double](repeating: 0, count: keys.count)
                  var factor = [Double](repeating: 1, count: keys.count)
                  var rowD = 0.0
                  for slot in 0..<keys.count {
                    let vRow = inputs.v + problem.kvIndex(b, keys.lowerBound + slot, kvh, width: dv)
                    var dot = 0.0
                    for c in 0..<dv { dot += dOutRow[c] * vRow[c] }
                    factor[slot] = problem.dropoutFactor(b, h, i, keys.lowerBound + slot)
                    dot *= factor[slot]
                    dP[slot] = dot
                    rowD += p[slot] * dot
                  }
                  let qRow = inputs.q + problem.qoIndex(b, i, h, width: d)
                  let dQRow = dQ + problem.qoIndex(b, i, h, width: d)
                  for slot in 0..<keys.count {
                    var dS = p[slot] * (dP[slot] - rowD)
                    if problem.softcap > 0 { dS *= 1 - tanhTerm[slot] * tanhTerm[slot] }
                    dS *= problem.scale
                    let kOffset = problem.kvIndex(b, keys.lowerBound + slot, kvh, width: d)
                    let (kRow, dKRow) = (inputs.k + kOffset, dK + kOffset)
                    for c in 0..<d {
                      dQRow[c] += dS * kRow[c]
                      dKRow[c] += dS * qRow[c]
                    }
                    let dVRow = dV + problem.kvIndex(b, keys.lowerBound + slot, kvh, width: dv)
                    let weight = p[slot] * factor[slot]
                    for c in 0..<dv { dVRow[c] += weight * dOutRow[c] }
                  }
                }
              }
            }
          }
        }
      }
    }
    return BackwardResult(dQ: dQ, dK: dK, dV: dV)
  }
}

/// The inputs of ``ReferenceAttention`` widened to contiguous float64 arrays, and the resolved options.
struct ReferenceProblem {
  let shape: AttentionShape
  let scale: Double
  let softcap: Double
  let mask: AttentionMask
  let options: AttentionOptions
  /// The keep mask of the options' dropout, if any (the generator the kernels share).
  let dropout: DropoutMask?
  let q: [Double]
  let k: [Double]
  let v: [Double]
  let dOut: [Double]

  init(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView?, options: AttentionOptions
  ) throws(FlashAttentionError) {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    if let dOut {
      try TensorChecks.expect(dOut, "dout", shape: shape.oShape, dtype: dOut.dtype, location: .host)
    }
    self.shape = shape
    self.scale = Double(options.resolvedScale(headDim: shape.headDim))
    self.softcap = Double(options.softcap)
    self.mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    self.options = options
    self.dropout = options.activeDropout.map { DropoutMask($0, headsQ: shape.headsQ) }
    self.q = q.rowMajorFloats().map(Double.init)
    self.k = k.rowMajorFloats().map(Double.init)
    self.v = v.rowMajorFloats().map(Double.init)
    self.dOut = dOut.map { $0.rowMajorFloats().map(Double.init) } ?? []
  }

  /// Index of `[b, i, h, 0]` in a `[batch, seqlen_q, heads_q, width]` array.
  func qoIndex(_ b: Int, _ i: Int, _ h: Int, width: Int) -> Int {
    ((b * shape.seqlenQ + i) * shape.headsQ + h) * width
  }

  /// Index of `[b, j, kvh, 0]` in a `[batch, seqlen_k, heads_kv, width]` array.
  func kvIndex(_ b: Int, _ j: Int, _ kvh: Int, width: Int) -> Int {
    ((b * shape.seqlenK + j) * shape.headsKV + kvh) * width
  }

  /// Dropout's factor for one element: 0 where dropped, 1/(1-p) where kept, 1 without dropout.
  func dropoutFactor(_ b: Int, _ h: Int, _ i: Int, _ j: Int) -> Double {
    dropout?.factor(batch: b, head: h, query: i, key: j) ?? 1
  }

  /// Scores of one query row against its visible keys, after scale, softcap and the ALiBi bias
  /// (FlashAttention-2's order: the bias is added to the capped score), and the softcap's tanh
  /// terms (for the backward pass).
  func scores(
    _ inputs: InputPointers<Double>, b: Int, i: Int, h: Int, kvh: Int, keys: Range<Int>
  ) -> (capped: [Double], tanhTerm: [Double]) {
    let d = shape.headDim
    var capped = [Double](repeating: 0, count: keys.count)
    var tanhTerm = [Double](repeating: 0, count: keys.count)
    let qRow = inputs.q + qoIndex(b, i, h, width: d)
    let slope = options.alibiSlopes.map { Double($0.slope(batch: b, head: h, headsQ: shape.headsQ)) } ?? 0
    for slot in 0..<keys.count {
      let kRow = inputs.k + kvIndex(b, keys.lowerBound + slot, kvh, width: d)
      var dot = 0.0
      for c in 0..<d { dot += qRow[c] * kRow[c] }
      var s = dot * scale
      if softcap > 0 {
        let t = (s / softcap).tanhValue
        tanhTerm[slot] = t
        s = softcap * t
      }
      if slope != 0 { s -= slope * Double(abs(i + shape.seqlenK - shape.seqlenQ - (keys.lowerBound + slot))) }
      capped[slot] = s
    }
    return (capped, tanhTerm)
  }
}

extension TensorView {
  /// A rank-4 view's elements in row-major order of its shape, widened to Float.
  func rowMajorFloats() -> [Float] {
    var values: [Float] = []
    values.reserveCapacity(elementCount)
    for a in 0..<shape[0] {
      for b in 0..<shape[1] {
        for c in 0..<shape[2] {
          let base = a * strides[0] + b * strides[1] + c * strides[2]
          for d in 0..<shape[3] { values.append(loadFloat(atElementOffset: base + d)) }
        }
      }
    }
    return values
  }
}
