import FlashAttention
import Testing

/// Runs `problem` on `engine` through ``Verification`` (fresh random inputs, NaN-poisoned
/// outputs, the float64 reference, ``VerificationRule``) and records a test failure with the
/// result's summary unless it passes with every output compared. Every backend's suite states
/// correctness through this one call.
///
/// - Parameters:
///   - beforeEachPass: called right before each call into the engine.
/// - Returns: the result, for assertions beyond the pass rule.
@discardableResult
package func expectPasses(
  _ problem: AttentionProblem, dtype: DType, engine: AttentionEngine,
  beforeEachPass: (Verification.Pass) -> Void = { _ in }, sourceLocation: SourceLocation = #_sourceLocation
) -> VerificationResult {
  let result = Verification(engine: engine).run(problem, dtype: dtype, beforeEachPass: beforeEachPass)
  // A result that compared fewer outputs than the problem has would pass vacuously.
  let compared = result.checks.count == (problem.backward ? 5 : 2)
  #expect(result.passed && compared, "\(result.summary)", sourceLocation: sourceLocation)
  return result
}

/// Compares one result that ``Verification`` cannot produce itself (a KV-cache or varlen call,
/// a file the CLI wrote) with its float64 reference under ``VerificationRule``, and records a
/// failure naming `context` unless it passes.
///
/// - Parameters:
///   - baseline: the same-precision standard attention's result for fp16/bf16, nil for float32.
///   - dtype: the precision `actual` was stored in (float32 for LSE).
@discardableResult
package func expectMatchesReference(
  _ name: String, actual: [Float], expected: [Double], baseline: [Double]? = nil, dtype: DType = .float32,
  _ context: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
) -> VerificationCheck {
  let check = VerificationCheck(name, actual: actual, expected: expected, baseline: baseline, dtype: dtype)
  #expect(check.passed, "\(check.summary): \(context())", sourceLocation: sourceLocation)
  return check
}

extension VerificationCheck {
  /// "dq rel=… tol=… nonfinite=…".
  package var summary: String {
    "\(name) rel=\(relativeL2) tol=\(tolerance) max=\(maxAbsolute)" + (nonFinite > 0 ? " nonfinite=\(nonFinite)" : "")
  }
}

extension VerificationResult {
  /// A one-line account of a result for failure messages (every check and violation, the seed, any error).
  package var summary: String {
    var text = "\(name) \(dtype) [\(shape)] \(options) on \(backend), seed \(seed):"
    if let error { text += " error: \(error)" }
    for violation in violations { text += " \(violation);" }
    for check in checks { text += " \(check.summary)" }
    return text
  }
}

/// Every combination of three argument lists, for `@Test(arguments:)` (which crosses at most
/// two collections itself): `combinations(problems, dtypes, instructionSets)`.
package func combinations<A, B, C>(_ first: [A], _ second: [B], _ third: [C]) -> [(A, B, C)] {
  first.flatMap { a in second.flatMap { b in third.map { c in (a, b, c) } } }
}
