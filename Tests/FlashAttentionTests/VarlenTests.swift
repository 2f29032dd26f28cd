import FlashAttention
import FlashAttentionTestSupport
import Testing

/// Packed variable-length batches on the CPU against the float64 reference of each sequence:
/// empty and one-token sequences, `seqused`, masks per sequence, GQA, d ≠ d_v.
@Suite("Variable-length batches (cu_seqlens)")
struct VarlenTests {
  struct Case: CustomStringConvertible, Sendable {
    var lengthsQ: [Int]
    var lengthsK: [Int]
    var usedQ: [Int]? = nil
    var usedK: [Int]? = nil
    var headsQ = 4
    var headsKV = 2
    var dim = 32
    var dimV = 32
    var options = AttentionOptions()
    /// Rows after the last sequence (allowed: cu_seqlens may end before the tensor does).
    var trailingRows = 0

    var description: String {
      "q \(lengthsQ) k \(lengthsK) used \(usedQ ?? []) \(usedK ?? []) h \(headsQ)/\(headsKV) d \(dim)/\(dimV) "
        + "causal \(options.causal) window \(options.window?.description ?? "-") softcap \(options.softcap)"
    }
  }

  static let cases: [Case] = [
    Case(lengthsQ: [1, 7, 17, 129], lengthsK: [1, 7, 17, 129]),
    Case(lengthsQ: [7, 0, 17, 1], lengthsK: [17, 5, 0, 33], options: AttentionOptions(causal: true)),
    Case(
      lengthsQ: [129, 20], lengthsK: [100, 130], headsQ: 3, headsKV: 1, dim: 40, dimV: 24,
      options: AttentionOptions(window: SlidingWindow(left: 16, right: 3), softcap: 20)),
    Case(
      lengthsQ: [17, 33, 9], lengthsK: [17, 40, 9], usedQ: [10, 33, 0], usedK: [17, 12, 9],
      options: AttentionOptions(causal: true), trailingRows: 5),
    // ALiBi with a (batch, heads_q) table (each sequence its row) and dropout keyed by the
    // sequence's index; with seqused, the bias uses the used lengths, as the mask does.
    Case(
      lengthsQ: [17, 33, 9], lengthsK: [17, 40, 9], usedQ: [10, 33, 9], usedK: [17, 12, 9],
      options: AttentionOptions(
        causal: true,
        alibiSlopes: AlibiSlopes(batch: 3, values: (0..<12).map { Float($0 + 1) / 16 }),
        dropout: AttentionDropout(probability: 0.25, seed: 11, offset: 5))),
    Case(
      lengthsQ: [1, 7, 129], lengthsK: [1, 70, 129], headsQ: 4, headsKV: 1,
      options: AttentionOptions(alibiSlopes: AlibiSlopes(perHead: [0.5, 0.25, 0.125, 0.0625]))),
  ]

  @Test("forward and backward match the per-sequence float64 reference", arguments: cases)
  func matchesReference(testCase: Case) throws {
    var random = TestRandom()
    let totalQ = testCase.lengthsQ.reduce(0, +) + testCase.trailingRows
    let totalK = testCase.lengthsK.reduce(0, +) + testCase.trailingRows
    var sequences = VarlenSequences(lengthsQ: testCase.lengthsQ, lengthsK: testCase.lengthsK)
    sequences.seqUsedQ = testCase.usedQ.map { IndexTensorView($0.map(Int32.init)) }
    sequences.seqUsedK = testCase.usedK.map { IndexTensorView($0.map(Int32.init)) }
    let q = random.tensor([totalQ, testCase.headsQ, testCase.dim])
    let k = random.tensor([totalK, testCase.headsKV, testCase.dim])
    let v = random.tensor([totalK, testCase.headsKV, testCase.dimV])
    let dOut = random.tensor([totalQ, testCase.headsQ, testCase.dimV])
    // NaN-poisoned outputs: an element nobody writes fails the comparison.
    let out = HostTensor(shape: [totalQ, testCase.headsQ, testCase.dimV], dtype: .float32)
    let lse = HostTensor(shape: [testCase.headsQ, totalQ], dtype: .float32)
    let dQ = HostTensor(shape: q.shape, dtype: .float32)
    let dK = HostTensor(shape: k.shape, dtype: .float32)
    let dV = HostTensor(shape: v.shape, dtype: .float32)
    let engine = try TestEngines.cpu()
    try engine.varlenForward(
      q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, sequences: sequences, options: testCase.options)
    try engine.varlenBackward(
      q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
      dV: dV.view, sequences: sequences, options: testCase.options)
    let forward = try VarlenReference.forward(
      q: q.view, k: k.view, v: v.view, sequences: sequences, options: testCase.options)
    let backward = try VarlenReference.backward(
      q: q.view, k: k.view, v: v.view, dOut: dOut.view, sequences: sequences, options: testCase.options)
    for (name, actual, expected) in [
      ("out", out, forward.out), ("lse", lse, forward.lse), ("dq", dQ, backward.dQ), ("dk", dK, backward.dK),
      ("dv", dV, backward.dV),
    ] {
      let metrics = ErrorMetrics(actual: actual.floats(), expected: expected)
      #expect(
        metrics.passes(tolerance: VerificationRule.float32Tolerance),
        "\(name): \(metrics) for \(testCase), seed \(random.seed)")
    }
  }

  @Test("bad index data is a typed error naming it")
  func badIndexData() throws {
    let engine = try TestEngines.cpu()
    let q = HostTensor(shape: [10, 2, 16], dtype: .float32)
    let out = HostTensor(shape: [10, 2, 16], dtype: .float32)
    let lse = HostTensor(shape: [2, 10], dtype: .float32)
    func expectError(_ sequences: VarlenSequences, names expected: String) {
      do {
        try engine.varlenForward(q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, sequences: sequences)
        Issue.record("no error for \(expected)")
      } catch let .invalidArgument(name, _, _) {
        #expect(name == expected)
      } catch {
        Issue.record("unexpected \(error)")
      }
    }
    let decreasing = VarlenSequences(
      cuSeqlensQ: IndexTensorView([0, 6, 4]), cuSeqlensK: IndexTensorView([0, 5, 10]), maxSeqlenQ: 10, maxSeqlenK: 10)
    expectError(decreasing, names: "cu_seqlens_q[2]")
    let tooLong = VarlenSequences(
      cuSeqlensQ: IndexTensorView([0, 5, 11]), cuSeqlensK: IndexTensorView([0, 5, 10]), maxSeqlenQ: 10, maxSeqlenK: 10)
    expectError(tooLong, names: "cu_seqlens_q[2]")
    let overMax = VarlenSequences(
      cuSeqlensQ: IndexTensorView([0, 9, 10]), cuSeqlensK: IndexTensorView([0, 5, 10]), maxSeqlenQ: 4, maxSeqlenK: 10)
    expectError(overMax, names: "cu_seqlens_q[1]")
    var overUsed = VarlenSequences(lengthsQ: [5, 5], lengthsK: [5, 5])
    overUsed.seqUsedK = IndexTensorView([2, 6])
    expectError(overUsed, names: "seqused_k[1]")
    let mismatched = VarlenSequences(
      cuSeqlensQ: IndexTensorView([0, 5, 10]), cuSeqlensK: IndexTensorView([0, 10]), maxSeqlenQ: 10, maxSeqlenK: 10)
    expectError(mismatched, names: "cu_seqlens_k.shape[0]")
    let notZero = VarlenSequences(
      cuSeqlensQ: IndexTensorView([1, 5, 10]), cuSeqlensK: IndexTensorView([0, 5, 10]), maxSeqlenQ: 10, maxSeqlenK: 10)
    expectError(notZero, names: "cu_seqlens_q[0]")
  }
}
