extension DType {
  /// `value` rounded to this storage format (to nearest even), returned as Float.
  @inlinable public func rounded(_ value: Float) -> Float {
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
  public static func samePrecisionForward(
    q: TensorView, k: TensorView, v: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) -> ForwardResult {
    let problem = try SamePrecisionProblem(q: q, k: k, v: v, dOut: nil, options: options)
    let shape = problem.shape
    var out = [Double](repeating: 0, count: shape.oShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: shape.lseShape.reduce(1, *))
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        for i in 0..<shape.seqlenQ {
          let row = problem.probabilities(b: b, h: h, i: i)
          guard !row.keys.isEmpty else { continue }
          let kvh = shape.kvHead(forQueryHead: h)
          let outBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * shape.headDimV
          for c in 0..<shape.headDimV {
            var sum: Float = 0
            for (slot, j) in row.keys.enumerated() {
              sum = sum.addingProduct(row.p[slot], problem.v[problem.vIndex(b, j, kvh) + c])
            }
            out[outBase + c] = Double(problem.dtype.rounded(sum))
          }
          lse[(b * shape.headsQ + h) * shape.seqlenQ + i] = Double(row.lse)
        }
      }
    }
    return ForwardResult(out: out, lse: lse)
  }

  /// The backward pass of ``samePrecisionForward(q:k:v:options:)``: gradients of
  /// `sum(out * dOut)` with float32 accumulation and dP, dS and the results rounded to `q.dtype`.
  public static func samePrecisionBackward(
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
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        let kvh = shape.kvHead(forQueryHead: h)
        for i in 0..<shape.seqlenQ {
          let row = problem.probabilities(b: b, h: h, i: i)
          guard !row.keys.isEmpty else { continue }
          let dOutBase = problem.qoIndex(b, i, h, width: dv)
          var dP = [Float](repeating: 0, count: row.keys.count)
          var rowD: Float = 0
          for (slot, j) in row.keys.enumerated() {
            let vBase = problem.vIndex(b, j, kvh)
            var dot: Float = 0
            for c in 0..<dv { dot = dot.addingProduct(problem.dOut[dOutBase + c], problem.v[vBase + c]) }
            dP[slot] = dtype.rounded(dot)
            rowD = rowD.addingProduct(row.p[slot], dP[slot])
            for c in 0..<dv { dV[vBase + c] = dV[vBase + c].addingProduct(row.p[slot], problem.dOut[dOutBase + c]) }
          }
          let qBase = problem.qoIndex(b, i, h, width: d)
          var dQRow = [Float](repeating: 0, count: d)
          for (slot, j) in row.keys.enumerated() {
            var dS = row.p[slot] * (dP[slot] - rowD)
            if problem.softcap > 0 { dS *= 1 - row.tanhTerm[slot] * row.tanhTerm[slot] }
            dS = dtype.rounded(dS * problem.scale)
            let kBase = problem.kIndex(b, j, kvh)
            for c in 0..<d {
              dQRow[c] = dQRow[c].addingProduct(dS, problem.k[kBase + c])
              dK[kBase + c] = dK[kBase + c].addingProduct(dS, problem.q[qBase + c])
            }
          }
          for c in 0..<d { dQ[qBase + c] = Double(dtype.rounded(dQRow[c])) }
        }
      }
    }
    return BackwardResult(
      dQ: dQ, dK: dK.map { Double(dtype.rounded($0)) }, dV: dV.map { Double(dtype.rounded($0)) })
  }
}

/// Inputs widened to contiguous Float arrays once, so the loops above index plain arrays.
struct SamePrecisionProblem {
  let shape: AttentionShape
  let dtype: DType
  let scale: Float
  let softcap: Float
  let mask: AttentionMask
  let q: [Float]
  let k: [Float]
  let v: [Float]
  let dOut: [Float]

  init(
    q: TensorView, k: TensorView, v: TensorView, dOut: TensorView?, options: AttentionOptions
  ) throws(FlashAttentionError) {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate()
    if let dOut {
      try TensorChecks.expect(dOut, "dout", shape: shape.oShape, dtype: dOut.dtype, location: .host)
    }
    self.shape = shape
    self.dtype = q.dtype
    self.scale = options.resolvedScale(headDim: shape.headDim)
    self.softcap = options.softcap
    self.mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    self.q = Self.contiguous(q)
    self.k = Self.contiguous(k)
    self.v = Self.contiguous(v)
    self.dOut = dOut.map(Self.contiguous) ?? []
  }

  /// A rank-4 view's elements in row-major order, widened to Float.
  static func contiguous(_ view: TensorView) -> [Float] {
    var values: [Float] = []
    values.reserveCapacity(view.elementCount)
    let shape = view.shape
    let strides = view.strides
    for a in 0..<shape[0] {
      for b in 0..<shape[1] {
        for c in 0..<shape[2] {
          let base = a * strides[0] + b * strides[1] + c * strides[2]
          for d in 0..<shape[3] { values.append(view.loadFloat(atElementOffset: base + d)) }
        }
      }
    }
    return values
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
  func probabilities(b: Int, h: Int, i: Int) -> (keys: Range<Int>, p: [Float], tanhTerm: [Float], lse: Float) {
    let (keys, s, tanhTerm) = scores(b: b, h: h, i: i)
    guard !keys.isEmpty else { return (keys, [], [], -.infinity) }
    let rowMax = s.max() ?? 0
    var sum: Float = 0
    var p = s.map { Float(Double($0 - rowMax).expValue) }
    for value in p { sum += value }
    for slot in p.indices { p[slot] = dtype.rounded(p[slot] / sum) }
    return (keys, p, tanhTerm, rowMax + Float(Double(sum).logValue))
  }

  /// One row of scores over its visible keys (float32 dot products, scaled, capped), with the
  /// softcap's tanh terms.
  func scores(b: Int, h: Int, i: Int) -> (keys: Range<Int>, s: [Float], tanhTerm: [Float]) {
    let keys = mask.visibleKeys(forQuery: i)
    guard !keys.isEmpty else { return (keys, [], []) }
    let kvh = shape.kvHead(forQueryHead: h)
    let qBase = qoIndex(b, i, h, width: shape.headDim)
    var s = [Float](repeating: 0, count: keys.count)
    var tanhTerm = [Float](repeating: 0, count: keys.count)
    for (slot, j) in keys.enumerated() {
      let kBase = kIndex(b, j, kvh)
      var dot: Float = 0
      for c in 0..<shape.headDim { dot = dot.addingProduct(q[qBase + c], k[kBase + c]) }
      var score = dot * scale
      if softcap > 0 {
        let t = Float((Double(score) / Double(softcap)).tanhValue)
        tanhTerm[slot] = t
        score = softcap * t
      }
      s[slot] = score
    }
    return (keys, s, tanhTerm)
  }
}
