/// The pass rule shared by `verify`, every backend's tests and the device runs (FlashAttention's:
/// a kernel may be at most twice as inaccurate as the standard attention it replaces).
///
/// - float32: relative L2 error at most ``float32Tolerance`` (1e-4).
/// - float16 / bfloat16: relative L2 error at most twice that of standard attention computed in
///   the same precision (``ReferenceAttention/samePrecisionForward(q:k:v:options:)``), plus
///   ``absoluteSlack`` for results whose baseline error is (near) zero. Where the reference is
///   exactly zero (a gradient of a one-key row), relative error is undefined and the absolute
///   L2 error may be one unit roundoff of the storage dtype: inputs are unit-scale normals, so a
///   correct kernel leaves only float32 rounding there (~1e-6), a wrong one leaves O(1).
/// - LSE is float32 for every dtype and always gets the float32 tolerance.
/// - A NaN never passes, nor an infinity where the reference is finite, nor anything but the
///   reference's own infinity where it is infinite (LSE = -inf for a row that sees no key).
/// - Beside the rule, ``Verification`` holds exact zeros where nothing is visible (see
///   `UnseenElements`) and deterministic bits where the options ask for them.
package enum VerificationRule {
  package static let float32Tolerance = 1e-4
  package static let baselineFactor = 2.0
  package static let absoluteSlack = 1e-6

  /// The largest relative L2 error accepted for a result of `dtype`, given the same-precision
  /// baseline's error on the same result (ignored for float32).
  package static func tolerance(dtype: DType, baselineError: Double?, referenceIsZero: Bool = false) -> Double {
    guard dtype != .float32, let baselineError else { return float32Tolerance }
    return baselineFactor * baselineError + (referenceIsZero ? dtype.unitRoundoff : absoluteSlack)
  }
}

/// One compared output of a case: its error, the tolerance it had to meet and the baseline.
package struct VerificationCheck: Sendable, Codable {
  /// "out", "lse", "dq", "dk" or "dv".
  package var name: String
  package var relativeL2: Double
  package var maxAbsolute: Double
  package var nonFinite: Int
  /// The same-precision standard attention's relative error (fp16/bf16 only).
  package var baselineError: Double?
  package var tolerance: Double
  package var passed: Bool

  /// Compares `actual` with the float64 `expected` under ``VerificationRule``.
  ///
  /// - Parameters:
  ///   - baseline: the same-precision standard attention's result (fp16/bf16), or nil.
  ///   - dtype: the precision `actual` was stored in (float32 for LSE).
  package init(_ name: String, actual: [Float], expected: [Double], baseline: [Double]?, dtype: DType) {
    let metrics = ErrorMetrics(actual: actual, expected: expected)
    let baselineError = baseline.map { ErrorMetrics(actual: $0.map { Float($0) }, expected: expected).relativeL2 }
    self.init(
      name: name, metrics: metrics, baselineError: baselineError,
      tolerance: VerificationRule.tolerance(
        dtype: dtype, baselineError: baselineError, referenceIsZero: metrics.referenceIsZero))
  }

  package init(name: String, metrics: ErrorMetrics, baselineError: Double?, tolerance: Double) {
    self.name = name
    self.relativeL2 = metrics.relativeL2
    self.maxAbsolute = metrics.maxAbsolute
    self.nonFinite = metrics.nonFiniteCount
    self.baselineError = baselineError
    self.tolerance = tolerance
    self.passed = metrics.passes(tolerance: tolerance)
  }
}

/// The outcome of one problem on one dtype and backend.
package struct VerificationResult: Sendable, Codable {
  package var name: String
  package var shape: String
  package var options: String
  package var dtype: String
  package var backend: String
  /// Seed of the random inputs, to replay a failure.
  package var seed: UInt64
  package var checks: [VerificationCheck]
  /// Exact properties the result lacks (a nonzero where nothing is visible, a deterministic
  /// backward that changed between runs).
  package var violations: [String]
  /// Why the problem could not run (the backend threw), or nil.
  package var error: String?
  package var forwardSeconds: Double?
  package var backwardSeconds: Double?
  /// True when the problem ran, every check passed and no exact property was violated.
  package var passed: Bool
  /// True when the backend refused the problem as `.unsupported` before anything ran (a feature
  /// it does not have, such as dropout in the CUDA kernels): reported, not counted as a failure.
  package var unsupported: Bool = false

  package init(
    problem: AttentionProblem, dtype: DType, backend: String, seed: UInt64, checks: [VerificationCheck],
    violations: [String] = [], error: String?, forwardSeconds: Double?, backwardSeconds: Double?
  ) {
    self.name = problem.name
    self.shape = problem.shape.description
    self.options = problem.optionsDescription
    self.dtype = dtype.rawValue
    self.backend = backend
    self.seed = seed
    self.checks = checks
    self.violations = violations
    self.error = error
    self.forwardSeconds = forwardSeconds
    self.backwardSeconds = backwardSeconds
    self.passed = error == nil && violations.isEmpty && checks.allSatisfy(\.passed)
  }

  /// The check with the largest error relative to its tolerance.
  package var worstCheck: VerificationCheck? {
    checks.max { $0.relativeL2 / $0.tolerance < $1.relativeL2 / $1.tolerance }
  }
}
