import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// Issue #16, row 2: a NaN or inf in Q, K or V reaches the rows it touches, as in a standard
/// attention (a NaN in k used to give O = 0 and LSE = -inf: a row that looks masked), and
/// nothing else: other rows match the float64 reference, rows without a visible key stay O = 0,
/// LSE = -inf.
@Suite("CPU backend with NaN and inf inputs")
struct NonFiniteInputTests {
  /// Causal, seqlen_q > seqlen_k (the first 20 rows see no key), GQA 2:1, two batches.
  static let shape = AttentionShape(batch: 2, seqlenQ: 150, seqlenK: 130, headsQ: 4, headsKV: 2, headDim: 32)
  static let options = AttentionOptions(causal: true)
  /// Query row `i` sees key `j` iff `j <= i - 20`.
  static func sees(_ i: Int, _ j: Int) -> Bool { j <= i + shape.seqlenK - shape.seqlenQ }

  enum Poison: CustomStringConvertible {
    case nanInK, infInV, nanInQ
    var description: String {
      switch self {
      case .nanInK: "NaN in k[1, 70, 1, 5]"
      case .infInV: "inf in v[0, 50, 0, 3]"
      case .nanInQ: "NaN in q[0, 100, 1, 0]"
      }
    }
  }

  @Test(
    "NaN or inf reaches the rows that see it, in O and LSE; other rows are unchanged",
    arguments: CPUInstructionSet.supported, [Poison.nanInK, .infInV, .nanInQ])
  func propagates(_ instructionSet: CPUInstructionSet, _ poison: Poison) throws {
    let shape = Self.shape
    var random = TestRandom()
    let q = random.tensor(shape.qShape), k = random.tensor(shape.kShape), v = random.tensor(shape.vShape)
    // Which (batch, query head, row) the poison reaches, and which output column (nil: all).
    let touched: (Int, Int, Int) -> Bool
    var column: Int? = nil
    switch poison {
    case .nanInK:
      k.view.storeFloat(.nan, atElementOffset: k.view.offset([1, 70, 1, 5]))
      touched = { b, h, i in b == 1 && h / 2 == 1 && Self.sees(i, 70) }
    case .infInV:
      v.view.storeFloat(.infinity, atElementOffset: v.view.offset([0, 50, 0, 3]))
      touched = { b, h, i in b == 0 && h / 2 == 0 && Self.sees(i, 50) }
      column = 3
    case .nanInQ:
      q.view.storeFloat(.nan, atElementOffset: q.view.offset([0, 100, 1, 0]))
      touched = { b, h, i in b == 0 && h == 1 && i == 100 }
    }
    let backend = try CPUBackend(threads: 2, instructionSet: instructionSet)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    try backend.forward(
      ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: Self.options))
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: Self.options)
    let outValues = out.floats(), lseValues = lse.floats()
    var clean: [Float] = [], cleanReference: [Double] = []
    var cleanLSE: [Float] = [], cleanLSEReference: [Double] = []
    for b in 0..<shape.batch {
      for h in 0..<shape.headsQ {
        for i in 0..<shape.seqlenQ {
          let lseIndex = (b * shape.headsQ + h) * shape.seqlenQ + i
          let rowBase = ((b * shape.seqlenQ + i) * shape.headsQ + h) * shape.headDimV
          let row = Array(outValues[rowBase..<(rowBase + shape.headDimV)])
          let context = "\(poison), row (\(b), \(h), \(i)), \(instructionSet), seed \(random.seed)"
          if i < shape.seqlenQ - shape.seqlenK {
            #expect(row.allSatisfy { $0 == 0 } && lseValues[lseIndex] == -.infinity, "no visible key: \(context)")
          } else if touched(b, h, i) {
            if let column {
              // V reaches O only: that column is not finite, the LSE is as without it.
              #expect(!row[column].isFinite, "O[\(column)] = \(row[column]): \(context)")
              cleanLSE.append(lseValues[lseIndex])
              cleanLSEReference.append(reference.lse[lseIndex])
            } else {
              #expect(row.allSatisfy(\.isNaN) && lseValues[lseIndex].isNaN, "O \(row.prefix(3)) LSE \(lseValues[lseIndex]): \(context)")
            }
          } else if column == nil || b != 0 || h / 2 != 0 {
            // Untouched rows (for inf in V: other heads and batches; rows of the same 6-row
            // block as a touched one may multiply P = 0 by inf, as a standard attention's P·V
            // does for every row).
            clean += row
            cleanReference += reference.out[rowBase..<(rowBase + shape.headDimV)]
            cleanLSE.append(lseValues[lseIndex])
            cleanLSEReference.append(reference.lse[lseIndex])
          }
        }
      }
    }
    // The rows the poison does not reach (and, for inf in V, the LSE of those it does) under
    // the pass rule.
    let label = "\(poison), \(instructionSet), seed \(random.seed)"
    #expect(!clean.isEmpty)
    expectMatchesReference("out of untouched rows", actual: clean, expected: cleanReference, label)
    expectMatchesReference("lse of untouched rows", actual: cleanLSE, expected: cleanLSEReference, label)

    // The backward pass: the poisoned batch's gradients are not all finite, the other batch's
    // match the reference.
    let dOut = random.tensor(shape.oShape)
    let dQ = HostTensor(shape: shape.qShape, dtype: .float32)
    let dK = HostTensor(shape: shape.kShape, dtype: .float32)
    let dV = HostTensor(shape: shape.vShape, dtype: .float32)
    try backend.backward(
      BackwardArguments(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
        dV: dV.view, options: Self.options))
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: Self.options)
    let poisoned = poison == .nanInK ? 1 : 0
    for (name, actual, expected) in [("dq", dQ, gradients.dQ), ("dk", dK, gradients.dK), ("dv", dV, gradients.dV)] {
      let values = actual.floats()
      let half = values.count / 2
      let other = poisoned == 0 ? half..<values.count : 0..<half
      let hit = poisoned == 0 ? 0..<half : half..<values.count
      expectMatchesReference(
        "\(name) of the other batch", actual: Array(values[other]), expected: Array(expected[other]), label)
      if name != "dv" || poison != .infInV {
        #expect(values[hit].contains { !$0.isFinite }, "\(name) of the poisoned batch all finite: \(poison)")
      }
    }
  }
}
