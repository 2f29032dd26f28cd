import FlashAttention
import FlashAttentionTestSupport
import Testing

/// Forward and backward of the CPU backend against the float64 reference, through the shared
/// `Verification` runner (fresh random inputs, NaN-poisoned outputs, the pass rule of `verify`).
@Suite("CPU attention against the float64 reference")
struct AttentionCaseTests {
  typealias S = AttentionShape
  typealias O = AttentionOptions

  /// Odd sizes, every head dim of the issue, GQA groups 1/2/4/8, masks and softcap; one case of
  /// length 1000 at most, because the float64 reference is O(sq * sk * d).
  static let sweep: [AttentionProblem] = {
    var cases: [AttentionProblem] = []
    for seqlen in [1, 7, 17, 129] {
      cases.append(
        AttentionProblem("seqlen-\(seqlen)", S(batch: 2, seqlenQ: seqlen, seqlenK: seqlen + 3, headsQ: 2, headDim: 64)))
    }
    cases.append(AttentionProblem("seqlen-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 64), O(causal: true)))
    for headDim in [8, 40, 64, 80, 128, 256] {
      cases.append(
        AttentionProblem("head-dim-\(headDim)", S(batch: 1, seqlenQ: 17, seqlenK: 29, headsQ: 2, headDim: headDim)))
    }
    for group in [1, 2, 4, 8] {
      cases.append(
        AttentionProblem(
          "gqa-\(group)", S(batch: 1, seqlenQ: 19, seqlenK: 33, headsQ: 8, headsKV: 8 / group, headDim: 40)))
    }
    cases += [
      AttentionProblem("causal-sq<sk", S(batch: 1, seqlenQ: 7, seqlenK: 129, headsQ: 2, headDim: 64), O(causal: true)),
      AttentionProblem("causal-sq>sk", S(batch: 1, seqlenQ: 129, seqlenK: 7, headsQ: 2, headDim: 64), O(causal: true)),
      AttentionProblem(
        "window-5-3", S(batch: 1, seqlenQ: 50, seqlenK: 70, headsQ: 2, headDim: 80),
        O(window: SlidingWindow(left: 5, right: 3))),
      AttentionProblem(
        "window-left-causal", S(batch: 1, seqlenQ: 70, seqlenK: 50, headsQ: 4, headsKV: 1, headDim: 40),
        O(causal: true, window: SlidingWindow(left: 9, right: nil))),
      AttentionProblem(
        "softcap", S(batch: 1, seqlenQ: 33, seqlenK: 45, headsQ: 2, headDim: 64), O(scale: 0.6, softcap: 1.5)),
      AttentionProblem(
        "dv-ne-d", S(batch: 1, seqlenQ: 21, seqlenK: 30, headsQ: 2, headDim: 40, headDimV: 72), O(causal: true)),
      AttentionProblem(
        "strided", S(batch: 2, seqlenQ: 17, seqlenK: 23, headsQ: 4, headsKV: 2, headDim: 24),
        O(window: SlidingWindow(left: 4, right: 4)), layout: .strided),
    ]
    return cases
  }()

  @Test("float32 sweep: odd sizes, head dims, GQA, masks, softcap", arguments: sweep)
  func float32Sweep(testCase: AttentionProblem) throws {
    let result = Verification(engine: try TestEngines.cpu()).run(testCase, dtype: .float32)
    #expect(result.passed, "\(result.summary)")
    #expect(result.checks.count == 5, "forward and backward were both checked: \(result.summary)")
  }

  @Test("the verify matrix passes in float32", arguments: VerificationMatrix.standard)
  func verifyMatrix(testCase: AttentionProblem) throws {
    let result = Verification(engine: try TestEngines.cpu()).run(testCase, dtype: .float32)
    #expect(result.passed, "\(result.summary)")
  }

  @Test("a call does not depend on the calls before it (no stale scratch memory)")
  func independentOfEarlierCalls() throws {
    let verification = Verification(engine: try TestEngines.cpu())
    let matrix = Dictionary(uniqueKeysWithValues: VerificationMatrix.standard.map { ($0.name, $0) })
    let target = try #require(matrix["window-16-8"])
    // Larger head dims and masked rows leave other values in the workers' scratch buffers.
    for name in ["d160", "causal-sq>sk", "softcap-2.5", "dv128-d192"] {
      _ = verification.run(try #require(matrix[name]), dtype: .float32)
      let result = verification.run(target, dtype: .float32)
      #expect(result.passed, "after \(name): \(result.summary)")
    }
  }

  static let lowPrecisionCases = [
    AttentionProblem(
      "causal-gqa", S(batch: 1, seqlenQ: 45, seqlenK: 60, headsQ: 4, headsKV: 2, headDim: 64), O(causal: true)),
    AttentionProblem(
      "softcap-window", S(batch: 2, seqlenQ: 33, headsQ: 2, headDim: 128),
      O(window: SlidingWindow(left: 8, right: 2), softcap: 4)),
    AttentionProblem("d40-sq>sk", S(batch: 1, seqlenQ: 40, seqlenK: 17, headsQ: 2, headDim: 40), O(causal: true)),
  ]

  @Test(
    "fp16 and bf16 storage: within 2x of same-precision standard attention",
    arguments: [DType.float16, .bfloat16], lowPrecisionCases)
  func lowPrecision(dtype: DType, testCase: AttentionProblem) throws {
    let result = Verification(engine: try TestEngines.cpu()).run(testCase, dtype: dtype)
    #expect(result.passed, "\(result.summary)")
  }
}
