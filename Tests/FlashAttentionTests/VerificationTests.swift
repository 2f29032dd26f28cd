import FlashAttention
import FlashAttentionTestSupport
import Testing

/// The verifier itself must fail wrong backends, or a passing `verify` means nothing.
@Suite("Verification catches wrong backends")
struct VerificationTests {
  /// Wraps the CPU backend and damages its results in one way.
  struct DamagedBackend: AttentionBackend {
    enum Damage: Sendable, CaseIterable {
      /// Writes nothing: the NaN poison stays.
      case skipsOutput
      /// Moves one output element by 0.1 (a bug in one row of one tile).
      case perturbsOneElement
      /// Leaves the last row of dV unwritten.
      case skipsLastGradientRow
    }

    let inner: any AttentionBackend
    let damage: Damage
    var name: String { "damaged-cpu" }

    func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
      if damage == .skipsOutput { return }
      try inner.forward(arguments)
      if damage == .perturbsOneElement {
        let value = arguments.out.loadFloat(atElementOffset: 3)
        arguments.out.storeFloat(value + 0.1, atElementOffset: 3)
      }
    }

    func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
      try inner.backward(arguments)
      if damage == .skipsLastGradientRow {
        let count = arguments.dV.elementCount
        for index in (count - arguments.shape.headDimV)..<count { arguments.dV.storeFloat(.nan, atElementOffset: index) }
      }
    }
  }

  static let testCase = AttentionProblem(
    "damage", AttentionShape(batch: 1, seqlenQ: 9, seqlenK: 12, headsQ: 2, headDim: 16), AttentionOptions(causal: true))

  @Test("a damaged backend fails", arguments: DamagedBackend.Damage.allCases, [DType.float32, .float16])
  func damagedBackendFails(damage: DamagedBackend.Damage, dtype: DType) throws {
    let backend = DamagedBackend(inner: try TestEngines.cpu().backend, damage: damage)
    let result = Verification(engine: AttentionEngine(backend: backend)).run(Self.testCase, dtype: dtype)
    #expect(!result.passed, "\(damage) went unnoticed: \(result.summary)")
  }

  @Test("the undamaged backend passes the same case")
  func intactBackendPasses() throws {
    for dtype in DType.allCases {
      let result = Verification(engine: try TestEngines.cpu()).run(Self.testCase, dtype: dtype)
      #expect(result.passed, "\(result.summary)")
    }
  }

  @Test("a backend error is a failed case, not a crash")
  func backendErrorFails() {
    struct Refusing: AttentionBackend {
      var name: String { "refusing" }
      func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
        throw .unsupported(backend: name, feature: "anything")
      }
      func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
        throw .unsupported(backend: name, feature: "anything")
      }
    }
    let result = Verification(engine: AttentionEngine(backend: Refusing())).run(Self.testCase, dtype: .float32)
    #expect(!result.passed)
    #expect(result.error?.contains("does not support anything") == true)
  }

  @Test("the pass rule: fixed for float32, relative to the baseline for fp16/bf16")
  func rule() {
    #expect(VerificationRule.tolerance(dtype: .float32, baselineError: 0.5) == 1e-4)
    #expect(VerificationRule.tolerance(dtype: .float16, baselineError: 1e-3) == 2e-3 + 1e-6)
    #expect(VerificationRule.tolerance(dtype: .bfloat16, baselineError: nil) == 1e-4)
  }

  @Test("an exactly-zero reference gets an absolute tolerance of one unit roundoff, not 1e-6")
  func zeroReference() {
    // A one-key row has dQ = dK = 0 exactly; float32 rounding in a kernel leaves ~1e-6 there.
    let rounding = ErrorMetrics(actual: [2e-6, -1e-6], expected: [0, 0])
    #expect(rounding.referenceIsZero)
    // The same-precision baseline is exact there too: its error is 0.
    let tolerance = VerificationRule.tolerance(dtype: .bfloat16, baselineError: 0, referenceIsZero: true)
    #expect(rounding.passes(tolerance: tolerance))
    // Garbage where zero belongs still fails.
    let garbage = ErrorMetrics(actual: [0.5, 0], expected: [0, 0])
    #expect(!garbage.passes(tolerance: tolerance))
    #expect(!ErrorMetrics(actual: [1], expected: [1]).referenceIsZero)
  }

  @Test("the same seed gives the same inputs and results")
  func replay() throws {
    let verification = Verification(engine: try TestEngines.cpu())
    let first = verification.run(Self.testCase, dtype: .float32, seed: 42)
    let second = verification.run(Self.testCase, dtype: .float32, seed: 42)
    #expect(first.checks.map(\.relativeL2) == second.checks.map(\.relativeL2))
  }
}
