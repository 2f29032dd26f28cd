extension DType {
  /// `value` rounded to this storage format (to nearest even), returned as Float.
  @inlinable package func rounded(_ value: Float) -> Float {
    switch self {
    case .float32: value
    case .float16: Float(Float16(value))
    case .bfloat16: BFloat16Conversion.float(fromBits: BFloat16Conversion.bits(from: value))
    case .float8E4M3: Float8E4M3Conversion.float(fromBits: Float8E4M3Conversion.bits(from: value))
    }
  }
}

extension ReferenceAttention {
  /// Standard attention as a framework computes it in the storage precision: float32 dot
  /// products and softmax, with P and O (and dP, dS, dQ, dK, dV in the backward pass) rounded to
  /// `q.dtype` where a materializing implementation stores them.
  ///
  /// Its error against the float64 ``forward(q:k:v:options:)`` is the yardstick of the pass rule
  /// for fp16 and bf16: a FlashAttention kernel should be at most about as inaccurate as the
  /// standard attention it replaces. Results are returned widened to Double.
  package static func samePrecisionForward(
    q: TensorView, k: TensorView, v: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> ForwardResult {
    let problem = try SamePrecisionProblem(q: q, k: k, v: v, dOut: nil, options: options)
    let shape = problem.shape
    let dv = shape.headDimV
    var out = [Double](repeating: 0, count: shape.oShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: shape.lseShape.reduce(1, *))
    var sums = [Float](repeating: 0, count: dv)
    withInputPointers(problem.q, problem.k, problem.v, problem.dOut) { inputs in
      sums.withElementPointer { sums in
        for b in 0..<shape.batch {
          for h in 0..<shape.headsQ {
            for i in 0..<shape.seqlenQ {
              let row = problem.probabilities(inputs, b: b, h: h, i: i)
              guard !row.keys.isEmpty else { continue }
              let kvh = shape.kvHead(forQueryHead: h)
              // Each output element sums P·V over the keys in order, one fused multiply-add a key.
              sums.update(repeating: 0, count: dv)
              for slot in 0..<row.p.count {
                let weight = problem.dtype.rounded(
                  row.p[slot] * problem.dropoutFactor(b, h, i, row.keys.lowerBound + slot))
                let vRow = inputs.v + problem.vIndex(b, row.keys.lowerBound + slot, kvh)
                for c in 0..<dv { sums[c] = sums[c].addingProduct(weight, vRow[c]) }
              }
              let outBase = problem.qoIndex(b, i, h, width: dv)
              for c in 0..<dv { out[outBase + c] = Double(problem.dtype.rounded(sums[c])) }
              lse[(b * shape.headsQ + h) * shape.seqlenQ + i] = Double(row.lse)
            }
          }
        }
      }
    }
    return ForwardResult(out: out, lse: lse)
  }

  /// The backward pass of ``samePrecisionForward(q:k:v:options:)``: gradients of
  /// `sum(out * dOut)` with float32 accumulation and dP, dS and the results rounded to `q.dtype`.
  package static func samePrecisionBackward(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> BackwardResult {
    let problem = try SamePrecisionProblem(q: q, k: k, v: v, dOut: dOut, options: options)
    let shape = problem.shape
    let dtype = problem.dtype
    let d = shape.headDim
    let dv = shape.headDimV
    var dQ = [Double](repeating: 0, count: shape.qShape.reduce(1, *))
    var dK = [Float](repeating: 0, count: shape.kShape.reduce(1, *))
    var dV = [Float](repeating: 0, count: shape.vShape.reduce(1, *))
    var dQRow = [Float](repeating: 0, count: d)
    withInputPointers(problem.q, problem.k, problem.v, problem.dOut) { inputs in
      dK.withElementPointer { dK in
        dV.withElementPointer { dV in
          dQRow.withElementPointer { dQRow in
            for b in 0..<shape.batch {
              for h in 0..<shape.headsQ {
                let kvh = shape.kvHead(forQueryHead: h)
                for i in 0..<shape.seqlenQ {
                  let row = problem.probabilities(inputs, b: b, h: h, i: i)
                  guard !row.keys.isEmpty else { continue }
                  let dOutRow = inputs.dOut + problem.qoIndex(b, i, h, width: dv)
                  let (p, tanhTerm) = (row.p, row.tanhTerm)
                  var dP = [Float](repeating: 0, count: row.keys.count)
                  var rowD: Float = 0
                  for slot in 0..<p.count {
                    let vOffset = problem.vIndex(b, row.keys.lowerBound + slot, kvh)
                    let (vRow, dVRow) = (inputs.v + vOffset, dV + vOffset)
                    var dot: Float = 0
                    for c in 0..<dv { dot = dot.addingProduct(dOutRow[c], vRow[c]) }
                    let factor = problem.dropoutFactor(b, h, i, row.keys.lowerBound + slot)
                    dP[slot] = dtype.rounded(dot * factor)
                    rowD = rowD.addingProduct(p[slot], dP[slot])
                    let weight = dtype.rounded(p[slot] * factor)
                    for c in 0..<dv { dVRow[c] = dVRow[c].addingProduct(weight, dOutRow[c]) }
                  }
                  let qBase = problem.qoIndex(b, i, h, width: d)
                  let qRow = inputs.q + qBase
                  dQRow.update(repeating: 0, count: d)
                  for slot in 0..<p.count {
                    var dS = p[slot] * (dP[slot] - rowD)
                    if problem.softcap > 0 { dS *= 1 - tanhTerm[slot] * tanhTerm[slot] }
                    dS = dtype.rounded(dS * problem.scale)
                    let kOffset = problem.kIndex(b, row.keys.lowerBound + slot, kvh)
                    let (kRow, dKRow) = (inputs.k + kOffset, dK + kOffset)
                    for c in 0..<d {
                      dQRow[c] = dQRow[c].addingProduct(dS, kRow[c])
                      dKRow[c] = dKRow[c].addingProduct(dS, qRow[c])
                    }
                  }
                  for c in 0..<d { dQ[qBase + c] = Double(dtype.rounded(dQRow[c])) }
                }
              }
            }
          }
        }
      }
    }
    return BackwardResult(
      dQ: dQ, dK: dK.map { Double(dtype.rounded($0)) }, dV: dV.map { Double(dtype.rounded($0)) })
  }
}

/// Inputs widened to contiguous Float arrays once, so the loops above index pointers.
struct SamePrecisionProblem {
  let shape: AttentionShape
  let dtype: DType
  let scale: Float
  let softcap: Float
  let mask: AttentionMask
  let alibi: AlibiSlopes?
  let dropout: DropoutMask?
  let q: [Float]
  let k: [Float]
  let v: [Float]
  let dOut: [Float]

  init(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView?, options: AttentionOptions
  ) throws(FlashAttentionError) {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    if let dOut {
      try TensorChecks.expect(dOut, "dout", shape: shape.oShape, dtype: dOut.dtype, location: .host)
    }
    self.shape = shape
    self.dtype = q.dtype
    self.scale = options.resolvedScale(headDim: shape.headDim)
    self.softcap = options.softcap
    self.mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    self.alibi = options.alibiSlopes
    self.dropout = options.activeDropout.map { DropoutMask($0, headsQ: shape.headsQ) }
    self.q = q.rowMajorFloats()
    self.k = k.rowMajorFloats()
    self.v = v.rowMajorFloats()
    self.dOut = dOut?.rowMajorFloats() ?? []
  }

  /// Dropout's factor of one entry of P: 1 without dropout.
  func dropoutFactor(_ b: Int, _ h: Int, _ i: Int, _ j: Int) -> Float {
    guard let dropout else { return 1 }
    return Float(dropout.factor(batch: b, head: h, query: i, key: j))
  }

  func qoIndex(_ b: Int, _ i: Int, _ h: Int, width: Int) -> Int {
    ((b * shape.seqlenQ + i) * shape.headsQ + h) * width
  }

  func kIndex(_ b: Int, _ j: Int, _ kvh: Int) -> Int {
    ((b * shape.seqlenK + j) * shape.headsKV + kvh) * shape.headDim
  }

  func vIndex(_ b: Int, _ j: Int, _ kvh: Int) -> Int {
    ((b * shape.seqlenK + j) * shape.headsKV + kvh) * shape.headDimV
  }

  /// One row of P over its visible keys, rounded to the storage dtype, with the row's LSE and
  /// the softcap's tanh terms (for the backward pass).
  func probabilities(
    _ inputs: InputPointers<Float>, b: Int, h: Int, i: Int
  ) -> (keys: Range<Int>, p: [Float], tanhTerm: [Float], lse: Float) {
    let (keys, s, tanhTerm) = scores(inputs, b: b, h: h, i: i)
    guard !keys.isEmpty else { return (keys, [], [], -.infinity) }
    let rowMax = s.max() ?? 0
    var sum: Float = 0
    var p = s.map { Float(Double($0 - rowMax).expValue) }
    for value in p { sum += value }
    for slot in p.indices { p[slot] = dtype.rounded(p[slot] / sum) }
    return (keys, p, tanhTerm, rowMax + Float(Double(sum).logValue))
  }

  /// One row of scores over its visible keys (float32 dot products, scaled, capped, ALiBi
  /// biased), with the softcap's tanh terms.
  func scores(
    _ inputs: InputPointers<Float>, b: Int, h: Int, i: Int
  ) -> (keys: Range<Int>, s: [Float], tanhTerm: [Float]) {
    let keys = mask.visibleKeys(forQuery: i)
    guard !keys.isEmpty else { return (keys, [], []) }
    let kvh = shape.kvHead(forQueryHead: h)
    let qRow = inputs.q + qoIndex(b, i, h, width: shape.headDim)
    var s = [Float](repeating: 0, count: keys.count)
    var tanhTerm = [Float](repeating: 0, count: keys.count)
    let slope = alibi?.slope(batch: b, head: h, headsQ: shape.headsQ) ?? 0
    for slot in 0..<keys.count {
      let kRow = inputs.k + kIndex(b, keys.lowerBound + slot, kvh)
      var dot: Float = 0
      for c in 0..<shape.headDim { dot = dot.addingProduct(qRow[c], kRow[c]) }
      var score = dot * scale
      if softcap > 0 {
        let t = Float((Double(score) / Double(softcap)).tanhValue)
        tanhTerm[slot] = t
        score = softcap * t
      }
      if slope != 0 { score -= slope * Float(abs(i + shape.seqlenK - shape.seqlenQ - (keys.lowerBound + slot))) }
      s[slot] = score
    }
    return (keys, s, tanhTerm)
  }
}
