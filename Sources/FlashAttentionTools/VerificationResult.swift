/// The pass rule shared by `verify`, the tests and the device runs.
///
/// - float32: relative L2 error at most ``float32Tolerance`` (1e-4).
/// - float16 / bfloat16: relative L2 error at most twice that of standard attention computed in
///   the same precision (``ReferenceAttention/samePrecisionForward(q:k:v:options:)``), plus
///   ``absoluteSlack`` for results whose baseline error is (near) zero. Where the reference is
///   exactly zero (a gradient of a one-key row), relative error is undefined and the absolute
///   L2 error may be one unit roundoff of the storage dtype: inputs are unit-scale normals, so a
///   correct kernel leaves only float32 rounding there (~1e-6), a wrong one leaves O(1).
/// - LSE is float32 for every dtype and always gets the float32 tolerance.
/// - A NaN or an infinity where the reference is finite never passes.
public enum VerificationRule {
  public static let float32Tolerance = 1e-4
  public static let baselineFactor = 2.0
  public static let absoluteSlack = 1e-6

  /// The largest relative L2 error accepted for a result of `dtype`, given the same-precision
  /// baseline's error on the same result (ignored for float32).
  public static func tolerance(dtype: DType, baselineError: Double?, referenceIsZero: Bool = false) -> Double {
    guard dtype != .float32, let baselineError else { return float32Tolerance }
    return baselineFactor * baselineError + (referenceIsZero ? dtype.unitRoundoff : absoluteSlack)
  }
}

/// One compared output of a case: its error, the tolerance it had to meet and the baseline.
public struct VerificationCheck: Sendable, Codable {
  /// "out", "lse", "dq", "dk" or "dv".
  public var name: String
  public var relativeL2: Double
  public var maxAbsolute: Double
  public var nonFinite: Int
  /// The same-precision standard attention's relative error (fp16/bf16 only).
  public var baselineError: Double?
  public var tolerance: Double
  public var passed: Bool

  public init(name: String, metrics: ErrorMetrics, baselineError: Double?, tolerance: Double) {
    self.name = name
    self.relativeL2 = metrics.relativeL2
    self.maxAbsolute = metrics.maxAbsolute
    self.nonFinite = metrics.nonFiniteCount
    self.baselineError = baselineError
    self.tolerance = tolerance
    self.passed = metrics.passes(tolerance: tolerance)
  }
}

/// The outcome of one case on one dtype and backend.
public struct VerificationResult: Sendable, Codable {
  public var name: String
  public var shape: String
  public var options: String
  public var dtype: String
  public var backend: String
  /// Seed of the random inputs, to replay a failure.
  public var seed: UInt64
  public var checks: [VerificationCheck]
  /// Why the case could not run (the backend threw), or nil.
  public var error: String?
  public var forwardSeconds: Double?
  public var backwardSeconds: Double?
  /// True when the case ran and every check passed.
  public var passed: Bool

  public init(
    testCase: VerificationCase, dtype: DType, backend: String, seed: UInt64, checks: [VerificationCheck],
    error: String?, forwardSeconds: Double?, backwardSeconds: Double?
  ) {
    self.name = testCase.name
    self.shape = testCase.shape.description
    self.options = testCase.optionsDescription
    self.dtype = dtype.rawValue
    self.backend = backend
    self.seed = seed
    self.checks = checks
    self.error = error
    self.forwardSeconds = forwardSeconds
    self.backwardSeconds = backwardSeconds
    self.passed = error == nil && checks.allSatisfy(\.passed)
  }

  /// The check with the largest error relative to its tolerance.
  public var worstCheck: VerificationCheck? {
    checks.max { $0.relativeL2 / $0.tolerance < $1.relativeL2 / $1.tolerance }
  }
}
