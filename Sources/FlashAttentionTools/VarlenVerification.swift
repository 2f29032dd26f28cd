/// One packed variable-length problem of `verify`: the sequences' lengths (optionally used
/// counts and rows after the last sequence), heads, head dims and options.
package struct VarlenVerificationCase: Sendable, Hashable, CustomStringConvertible {
  package var name: String
  package var lengthsQ: [Int]
  package var lengthsK: [Int]
  package var usedQ: [Int]?
  package var usedK: [Int]?
  package var headsQ: Int
  package var headsKV: Int
  package var headDim: Int
  package var headDimV: Int
  package var options: AttentionOptions
  /// Rows of q and k after the last sequence (they must come back 0, their LSE -inf).
  package var trailingRows: Int
  /// Fills the rows no sequence uses (past seqused, after the last sequence) of q, k, v and dO
  /// with NaN: a kernel that lets them into a sum (0 · NaN) fails.
  package var poisonUnusedRows: Bool
  package var backward: Bool

  package init(
    _ name: String, lengthsQ: [Int], lengthsK: [Int], usedQ: [Int]? = nil, usedK: [Int]? = nil, headsQ: Int,
    headsKV: Int, headDim: Int, headDimV: Int? = nil, options: AttentionOptions = AttentionOptions(),
    trailingRows: Int = 0, poisonUnusedRows: Bool = false, backward: Bool = true
  ) {
    self.name = name
    self.lengthsQ = lengthsQ
    self.lengthsK = lengthsK
    self.usedQ = usedQ
    self.usedK = usedK
    self.headsQ = headsQ
    self.headsKV = headsKV
    self.headDim = headDim
    self.headDimV = headDimV ?? headDim
    self.options = options
    self.trailingRows = trailingRows
    self.poisonUnusedRows = poisonUnusedRows
    self.backward = backward
  }

  package var totalQ: Int { lengthsQ.reduce(0, +) + trailingRows }
  package var totalK: Int { lengthsK.reduce(0, +) + trailingRows }

  /// The index data as host views.
  package var sequences: VarlenSequences {
    var sequences = VarlenSequences(lengthsQ: lengthsQ, lengthsK: lengthsK)
    sequences.seqUsedQ = usedQ.map { IndexTensorView($0.map { Int32($0) }) }
    sequences.seqUsedK = usedK.map { IndexTensorView($0.map { Int32($0) }) }
    return sequences
  }

  /// "q [1, 7] k [1, 7] used q [..] h 4/2 d 64": the lengths as the table's shape column.
  package var shapeDescription: String {
    // Long batches as a count and a total (a table row, not a list of a thousand lengths).
    func lengths(_ values: [Int]) -> String {
      values.count > 16 ? "\(values.count) sequences, \(values.reduce(0, +)) rows" : "\(values)"
    }
    var text = "q \(lengths(lengthsQ)) k \(lengths(lengthsK))"
    if let usedQ { text += " usedq \(lengths(usedQ))" }
    if let usedK { text += " usedk \(lengths(usedK))" }
    if trailingRows > 0 { text += " +\(trailingRows) rows" }
    if poisonUnusedRows { text += " (NaN)" }
    text += " h \(headsQ)/\(headsKV) d \(headDim)"
    if headDimV != headDim { text += "/\(headDimV)" }
    return text
  }

  /// The options in the words of `AttentionProblem`.
  package var optionsDescription: String {
    AttentionProblem(name, AttentionShape(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 8), options).optionsDescription
  }

  package var description: String { "\(name) [\(shapeDescription)] \(optionsDescription)" }
}

/// The packed-batch cases of `verify`: odd lengths (0, 1, 7, 17, 129, 1000), causal and windows
/// per sequence, GQA, softcap, d ≠ d_v, `seqused` with rows after the last sequence, the
/// deterministic backward, and head dims of every tile bucket used by the GPU kernels.
package enum VarlenVerificationMatrix {
  package static let standard: [VarlenVerificationCase] = {
    typealias C = VarlenVerificationCase
    typealias O = AttentionOptions
    return [
      C("varlen-odd-gqa", lengthsQ: [1, 7, 0, 17, 129, 1000], lengthsK: [1, 7, 0, 17, 129, 1000], headsQ: 4, headsKV: 2,
        headDim: 64),
      C("varlen-causal-gqa4", lengthsQ: [7, 0, 17, 129, 1000, 1], lengthsK: [17, 5, 0, 129, 1000, 33], headsQ: 8,
        headsKV: 2, headDim: 128, options: O(causal: true)),
      C("varlen-window-softcap", lengthsQ: [129, 20, 1, 7], lengthsK: [100, 130, 7, 0], headsQ: 3, headsKV: 1,
        headDim: 40, headDimV: 24, options: O(window: SlidingWindow(left: 16, right: 3), softcap: 20)),
      C("varlen-softcap-causal", lengthsQ: [65, 1, 129], lengthsK: [80, 17, 129], headsQ: 4, headsKV: 2, headDim: 128,
        options: O(causal: true, softcap: 5)),
      C("varlen-seqused", lengthsQ: [17, 33, 9], lengthsK: [17, 40, 9], usedQ: [10, 33, 0], usedK: [17, 12, 9],
        headsQ: 4, headsKV: 2, headDim: 64, options: O(causal: true), trailingRows: 5),
      C("varlen-window-left", lengthsQ: [129, 1000], lengthsK: [129, 1000], headsQ: 2, headsKV: 2, headDim: 96,
        options: O(causal: true, window: SlidingWindow(left: 100, right: nil))),
      C("varlen-deterministic", lengthsQ: [200, 7, 129], lengthsK: [300, 17, 129], headsQ: 4, headsKV: 2,
        headDim: 64, options: O(causal: true, deterministic: true)),
      C("varlen-d256-mqa", lengthsQ: [33, 1, 129, 0], lengthsK: [47, 0, 64, 9], headsQ: 4, headsKV: 1, headDim: 256,
        options: O(window: SlidingWindow(left: nil, right: 5))),
      C("varlen-empty", lengthsQ: [0, 0], lengthsK: [0, 3], headsQ: 2, headsKV: 1, headDim: 64, trailingRows: 2),
      // Unused rows hold NaN (as a cache or an uninitialized tail may): on the GPU the Hopper
      // kernels read them through TMA (d 128: split backward; d 64: fused) and must keep them out.
      C("varlen-nan-unused-d128", lengthsQ: [130, 7, 200], lengthsK: [150, 33, 200], usedQ: [129, 7, 131],
        usedK: [140, 1, 77], headsQ: 4, headsKV: 2, headDim: 128, options: O(causal: true), trailingRows: 9,
        poisonUnusedRows: true),
      C("varlen-nan-unused-d64", lengthsQ: [70, 129], lengthsK: [70, 200], usedQ: [65, 100], usedK: [70, 129],
        headsQ: 4, headsKV: 4, headDim: 64, options: O(window: SlidingWindow(left: 40, right: 8)), trailingRows: 3,
        poisonUnusedRows: true),
      // For the packed schedule (`--varlen-schedule packed`): sequences out of length order whose
      // tiles the list reorders longest-first, and more sequences than the schedule kernel sorts
      // at once (1024; the rest keep their order in chunks).
      C("varlen-lpt-mix", lengthsQ: [300, 5, 600, 64, 0, 450, 129], lengthsK: [300, 5, 600, 64, 0, 450, 129],
        headsQ: 4, headsKV: 2, headDim: 128, options: O(causal: true)),
      C("varlen-many-sequences", lengthsQ: (0..<1100).map { ($0 * 7) % 5 }, lengthsK: (0..<1100).map { ($0 * 3) % 4 },
        headsQ: 2, headsKV: 1, headDim: 64),
    ]
  }()
}

extension Verification {
  /// Runs one packed-batch case: fresh random inputs, NaN-poisoned outputs, forward and backward
  /// against `VarlenReference` with the pass rule of ``VerificationRule`` (the same-precision
  /// yardstick per sequence). Never throws: a backend error becomes the result's `error`.
  package func run(
    _ testCase: VarlenVerificationCase, dtype: DType, seed: UInt64 = UInt64.random(in: 1...UInt64.max)
  ) -> VerificationResult {
    var random = VerificationRandom(seed: seed)
    let sequences = testCase.sequences
    let (totalQ, totalK) = (testCase.totalQ, testCase.totalK)
    let q = random.tensor([totalQ, testCase.headsQ, testCase.headDim], dtype: dtype)
    let k = random.tensor([totalK, testCase.headsKV, testCase.headDim], dtype: dtype)
    let v = random.tensor([totalK, testCase.headsKV, testCase.headDimV], dtype: dtype)
    let dOut = random.tensor([totalQ, testCase.headsQ, testCase.headDimV], dtype: dtype)
    if testCase.poisonUnusedRows, let spans = try? VarlenChecks.spans(sequences, totalQ: totalQ, totalK: totalK) {
      let queryRows = Self.unusedRows(spans.map { ($0.queryStart, $0.queriesUsed, $0.queryLength) }, total: totalQ)
      let keyRows = Self.unusedRows(spans.map { ($0.keyStart, $0.keysUsed, $0.keyLength) }, total: totalK)
      for tensor in [q, dOut] { Self.fillRows(tensor, queryRows, with: .nan) }
      for tensor in [k, v] { Self.fillRows(tensor, keyRows, with: .nan) }
    }
    let options = testCase.options
    var checks: [VerificationCheck] = []
    var forwardSeconds: Double?
    var backwardSeconds: Double?
    func result(_ error: String?) -> VerificationResult {
      VerificationResult(
        name: testCase.name, shape: testCase.shapeDescription, options: testCase.optionsDescription, dtype: dtype,
        backend: engine.backend.name, seed: seed, checks: checks, error: error, forwardSeconds: forwardSeconds,
        backwardSeconds: backwardSeconds)
    }
    let out = HostTensor(shape: [totalQ, testCase.headsQ, testCase.headDimV], dtype: dtype)
    let lse = HostTensor(shape: [testCase.headsQ, totalQ], dtype: .float32)
    do {
      let start = ContinuousClock.now
      try engine.varlenForward(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, sequences: sequences, options: options)
      forwardSeconds = elapsedSeconds(since: start)
      let reference = try VarlenReference.forward(q: q.view, k: k.view, v: v.view, sequences: sequences, options: options)
      let baseline =
        dtype == .float32
        ? nil
        : try VarlenReference.samePrecisionForward(q: q.view, k: k.view, v: v.view, sequences: sequences, options: options)
      checks.append(varlenCheck("out", out.floats(), reference.out, baseline?.out, dtype: dtype))
      checks.append(varlenCheck("lse", lse.floats(), reference.lse, nil, dtype: .float32))
      guard testCase.backward else { return result(nil) }
      let dQ = HostTensor(shape: q.shape, dtype: dtype)
      let dK = HostTensor(shape: k.shape, dtype: dtype)
      let dV = HostTensor(shape: v.shape, dtype: dtype)
      let backwardStart = ContinuousClock.now
      try engine.varlenBackward(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
        dV: dV.view, sequences: sequences, options: options)
      backwardSeconds = elapsedSeconds(since: backwardStart)
      let gradients = try VarlenReference.backward(
        q: q.view, k: k.view, v: v.view, dOut: dOut.view, sequences: sequences, options: options)
      let baselineGradients =
        dtype == .float32
        ? nil
        : try VarlenReference.samePrecisionBackward(
          q: q.view, k: k.view, v: v.view, dOut: dOut.view, sequences: sequences, options: options)
      checks.append(varlenCheck("dq", dQ.floats(), gradients.dQ, baselineGradients?.dQ, dtype: dtype))
      checks.append(varlenCheck("dk", dK.floats(), gradients.dK, baselineGradients?.dK, dtype: dtype))
      checks.append(varlenCheck("dv", dV.floats(), gradients.dV, baselineGradients?.dV, dtype: dtype))
      if options.deterministic {
        let again = [q.shape, k.shape, v.shape].map { HostTensor(shape: $0, dtype: dtype) }
        try engine.varlenBackward(
          q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: again[0].view,
          dK: again[1].view, dV: again[2].view, sequences: sequences, options: options)
        for (name, first, second) in [("dq", dQ, again[0]), ("dk", dK, again[1]), ("dv", dV, again[2])]
        where !Self.sameBytes(first, second) {
          return result("deterministic backward: \(name) differs between two runs on the same inputs")
        }
      }
      return result(nil)
    } catch {
      return result(error.description)
    }
  }

  /// The rows of a packed tensor outside every sequence's used rows.
  static func unusedRows(_ spans: [(start: Int, used: Int, length: Int)], total: Int) -> [Int] {
    var rows: [Int] = []
    for span in spans { rows += Array((span.start + span.used)..<(span.start + span.length)) }
    let end = spans.last.map { $0.start + $0.length } ?? 0
    return rows + Array(end..<total)
  }

  /// Sets every element of rows `rows` of a host `(total, heads, dim)` tensor.
  static func fillRows(_ tensor: HostTensor, _ rows: [Int], with value: Float) {
    let view = tensor.view
    let rowElements = tensor.shape[1] * tensor.shape[2]
    for row in rows {
      for element in 0..<rowElements { view.storeFloat(value, atElementOffset: row * rowElements + element) }
    }
  }

  private static func sameBytes(_ a: HostTensor, _ b: HostTensor) -> Bool {
    a.byteCount == b.byteCount
      && UnsafeRawBufferPointer(start: a.storage, count: a.byteCount).elementsEqual(
        UnsafeRawBufferPointer(start: b.storage, count: b.byteCount))
  }

  private func varlenCheck(
    _ name: String, _ actual: [Float], _ expected: [Double], _ baseline: [Double]?, dtype: DType
  ) -> VerificationCheck {
    let metrics = ErrorMetrics(actual: actual, expected: expected)
    let baselineError = baseline.map { ErrorMetrics(actual: $0.map { Float($0) }, expected: expected).relativeL2 }
    return VerificationCheck(
      name: name, metrics: metrics, baselineError: baselineError,
      tolerance: VerificationRule.tolerance(
        dtype: dtype, baselineError: baselineError, referenceIsZero: metrics.referenceIsZero))
  }
}

extension VerificationResult {
  /// A result described by its own words (the packed cases have no `AttentionProblem`).
  package init(
    name: String, shape: String, options: String, dtype: DType, backend: String, seed: UInt64,
    checks: [VerificationCheck], error: String?, forwardSeconds: Double?, backwardSeconds: Double?
  ) {
    self.name = name
    self.shape = shape
    self.options = options
    self.dtype = dtype.rawValue
    self.backend = backend
    self.seed = seed
    self.checks = checks
    self.violations = []
    self.error = error
    self.forwardSeconds = forwardSeconds
    self.backwardSeconds = backwardSeconds
    self.passed = error == nil && checks.allSatisfy(\.passed)
  }
}

private func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
  let parts = (ContinuousClock.now - start).components
  return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
}
