import FlashAttentionCore

extension VerificationRule {
  /// fp8 outputs pass at up to this many times the error of the fp8 same-precision standard
  /// attention (`ReferenceAttention.samePrecisionForwardFloat8`); FlashAttention-3's fp8 tests
  /// allow 3x their own (looser) yardstick.
  package static let float8BaselineFactor = 4.0
}

extension Verification {
  /// The LSE under the float32 rule, or on a CUDA backend (whose fp8 tensor cores accumulate
  /// scores in 13-bit mantissas) under the bound of that accumulation
  /// (`ReferenceAttention.float8ScoreErrorBound`) as a yardstick, at the fp8 rule's factor
  /// (``VerificationRule/float8BaselineFactor``), as a relative L2 tolerance: elementwise errors
  /// within their bounds give a relative L2 error within the bounds' norm over the LSE's. (The
  /// model is not the hardware's exact behaviour: an H100 run of 2026-12-06 put one row of an
  /// outlier problem at 1.47x its bound, while verify's relative L2 reached 0.54x.)
  private func lseCheck(
    _ actual: [Float], _ expected: [Double], q: TensorView, k: TensorView, v: TensorView, descale: FP8Descale,
    options: AttentionOptions
  ) throws(FlashAttentionError) -> VerificationCheck {
    let plain = VerificationCheck("lse", actual: actual, expected: expected, baseline: nil, dtype: .float32)
    guard engine.backend.name.hasPrefix("cuda") else { return plain }
    let bounds = try ReferenceAttention.float8ScoreErrorBound(q: q, k: k, v: v, descale: descale, options: options)
    let boundNorm = bounds.reduce(0) { $0 + $1 * $1 }.squareRoot()
    let expectedNorm = expected.filter(\.isFinite).reduce(0) { $0 + $1 * $1 }.squareRoot()
    guard expectedNorm > 0 else { return plain }
    return VerificationCheck(
      name: "lse", metrics: ErrorMetrics(actual: actual, expected: expected), baselineError: nil,
      tolerance: max(plain.tolerance, VerificationRule.float8BaselineFactor * boundNorm / expectedNorm))
  }

  /// One case with float8_e4m3fn inputs: random normals rounded to e4m3, random descale factors
  /// in [0.25, 2) per (batch, kv head), a bfloat16 output; forward only (fp8 has no backward:
  /// the call must be refused). Output compared with the float64 reference on the dequantised
  /// inputs under ``VerificationRule/float8BaselineFactor``; the LSE as `lseCheck` says.
  func runFloat8(_ problem: AttentionProblem, seed: UInt64) -> VerificationResult {
    let dtype = DType.float8E4M3
    var random = VerificationRandom(seed: seed)
    let shape = problem.shape
    let inputs: AttentionInputs
    do {
      inputs = try random.inputs(for: problem, dtype: dtype)
    } catch {
      return VerificationResult(
        problem: problem, dtype: dtype, backend: engine.backend.name, seed: seed, checks: [], violations: [],
        error: error.description, forwardSeconds: nil, backwardSeconds: nil)
    }
    let (q, k, v) = (inputs.q, inputs.k, inputs.v)
    let factors = (0..<3).map { _ in
      HostTensor(
        (0..<shape.batch * shape.headsKV).map { _ in Float.random(in: 0.25..<2, using: &random) },
        shape: [shape.batch, shape.headsKV])
    }
    let descale = FP8Descale(q: factors[0].view, k: factors[1].view, v: factors[2].view)
    var checks: [VerificationCheck] = []
    var forwardSeconds: Double?
    func result(_ error: String?) -> VerificationResult {
      VerificationResult(
        problem: problem, dtype: dtype, backend: engine.backend.name, seed: seed, checks: checks,
        violations: [], error: error, forwardSeconds: forwardSeconds, backwardSeconds: nil)
    }
    let options = problem.options
    let out = HostTensor(shape: shape.oShape, dtype: .bfloat16)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    do {
      let start = ContinuousClock.now
      try engine.forward(
        q: q, k: k, v: v, out: out.view, lse: lse.view, options: options, descale: descale)
      let elapsed = (ContinuousClock.now - start).components
      forwardSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
      let reference = try ReferenceAttention.forward(q: q, k: k, v: v, descale: descale, options: options)
      let baseline = try ReferenceAttention.samePrecisionForwardFloat8(
        q: q, k: k, v: v, descale: descale, options: options)
      let metrics = ErrorMetrics(actual: out.floats(), expected: reference.out)
      let baselineError = ErrorMetrics(actual: baseline.out.map { Float($0) }, expected: reference.out).relativeL2
      let tolerance =
        VerificationRule.float8BaselineFactor * baselineError
        + (metrics.referenceIsZero ? DType.bfloat16.unitRoundoff : VerificationRule.absoluteSlack)
      checks.append(VerificationCheck(name: "out", metrics: metrics, baselineError: baselineError, tolerance: tolerance))
      checks.append(try lseCheck(lse.floats(), reference.lse, q: q, k: k, v: v, descale: descale, options: options))
      guard problem.backward else { return result(nil) }
      // The backward must refuse fp8 inputs with a typed error, not run.
      let gradients = [shape.qShape, shape.kShape, shape.vShape].map { HostTensor(shape: $0, dtype: dtype) }
      do {
        try engine.backward(
          q: q, k: k, v: v, out: out.view, lse: lse.view, dOut: out.view, dQ: gradients[0].view,
          dK: gradients[1].view, dV: gradients[2].view, options: options)
        return result("the backward ran on fp8 inputs instead of refusing them")
      } catch {
        guard case .invalidArgument(name: "q.dtype", _, _) = error else {
          return result("the backward on fp8 inputs failed with \(error), not the fp8 refusal")
        }
        return result(nil)
      }
    } catch {
      var failed = result(error.description)
      if case .unsupported = error, checks.isEmpty { failed.unsupported = true }
      return failed
    }
  }
}

extension TensorView {
  /// Multiplies every 16th column (3, 19, 35, ...) of a host view by 16 (rounded to the dtype):
  /// outlier channels like those of LLM activations.
  func addOutlierChannels() {
    let width = shape.last ?? 0
    let rows = elementCount / max(width, 1)
    let outer = TensorView(baseAddress: baseAddress, dtype: dtype, shape: Array(shape.dropLast()), strides: Array(strides.dropLast()))
    let starts = rows > 0 ? outer.elementOffsets() : []
    for start in starts {
      for column in stride(from: 3, to: width, by: 16) {
        storeFloat(loadFloat(atElementOffset: start + column) * 16, atElementOffset: start + column)
      }
    }
  }
}
