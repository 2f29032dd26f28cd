#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs attention problems on an engine the one way every backend is judged: fresh random
/// inputs, NaN-poisoned outputs, forward and backward compared with the float64 reference under
/// ``VerificationRule``, and the exact properties of ``UnseenElements`` and determinism.
///
/// ```swift
/// let verification = Verification(engine: try AttentionEngine(backend: .cpu))
/// for problem in VerificationMatrix.standard {
///   let result = verification.run(problem, dtype: .float16)
///   print(result.name, result.passed)
/// }
/// ```
package struct Verification: Sendable {
  /// A pass of attention, as named to the hook of ``run(_:dtype:seed:beforeEachPass:)``.
  package enum Pass: Sendable {
    case forward
    case backward
  }

  package let engine: AttentionEngine

  /// - Parameter engine: what runs the problems; `AttentionEngine(backend:)` wraps any backend
  ///   (a `CPUBackend` of some threads and instruction set, a CUDA backend, a test double).
  package init(engine: AttentionEngine) {
    self.engine = engine
  }

  /// Runs one problem. Never throws: a backend error becomes the result's `error` (a failure).
  ///
  /// - Parameters:
  ///   - problem: the shape, options and input layout.
  ///   - dtype: storage dtype of Q, K, V, dO and the outputs.
  ///   - seed: seed of the random inputs; a fresh one by default (it is in the result).
  ///   - beforeEachPass: called right before each call into the engine (a test poisons the
  ///     backend's scratch memory there).
  package func run(
    _ problem: AttentionProblem, dtype: DType, seed: UInt64 = UInt64.random(in: 1...UInt64.max),
    beforeEachPass: (Pass) -> Void = { _ in }
  ) -> VerificationResult {
    if dtype.isFloat8 { return runFloat8(problem, seed: seed) }
    var checks: [VerificationCheck] = []
    var violations: [String] = []
    var forwardSeconds: Double?
    var backwardSeconds: Double?
    func result(_ error: String?) -> VerificationResult {
      VerificationResult(
        problem: problem, dtype: dtype, backend: engine.backend.name, seed: seed, checks: checks,
        violations: violations, error: error, forwardSeconds: forwardSeconds, backwardSeconds: backwardSeconds)
    }
    do {
      var random = VerificationRandom(seed: seed)
      let inputs = try random.inputs(for: problem, dtype: dtype)
      let (q, k, v, dOut) = (inputs.q, inputs.k, inputs.v, inputs.dOut)
      let shape = problem.shape
      let options = problem.options
      let unseen = UnseenElements(problem)

      let out = HostTensor(shape: shape.oShape, dtype: dtype)
      let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
      beforeEachPass(.forward)
      let start = ContinuousClock.now
      try engine.forward(q: q, k: k, v: v, out: out.view, lse: lse.view, options: options)
      forwardSeconds = seconds(since: start)
      let reference = try ReferenceAttention.forward(q: q, k: k, v: v, options: options)
      let baseline =
        dtype == .float32 ? nil : try ReferenceAttention.samePrecisionForward(q: q, k: k, v: v, options: options)
      let outValues = out.floats()
      checks.append(VerificationCheck("out", actual: outValues, expected: reference.out, baseline: baseline?.out, dtype: dtype))
      checks.append(VerificationCheck("lse", actual: lse.floats(), expected: reference.lse, baseline: nil, dtype: .float32))
      violations += unseen.rowViolations("out", outValues, width: shape.headDimV)
      guard problem.backward else { return result(nil) }

      let dQ = HostTensor(shape: shape.qShape, dtype: dtype)
      let dK = HostTensor(shape: shape.kShape, dtype: dtype)
      let dV = HostTensor(shape: shape.vShape, dtype: dtype)
      beforeEachPass(.backward)
      let backwardStart = ContinuousClock.now
      try engine.backward(
        q: q, k: k, v: v, out: out.view, lse: lse.view, dOut: dOut, dQ: dQ.view, dK: dK.view, dV: dV.view,
        options: options)
      backwardSeconds = seconds(since: backwardStart)
      let gradients = try ReferenceAttention.backward(q: q, k: k, v: v, dOut: dOut, options: options)
      let baselineGradients =
        dtype == .float32
        ? nil : try ReferenceAttention.samePrecisionBackward(q: q, k: k, v: v, dOut: dOut, options: options)
      let (dQValues, dKValues, dVValues) = (dQ.floats(), dK.floats(), dV.floats())
      checks.append(VerificationCheck("dq", actual: dQValues, expected: gradients.dQ, baseline: baselineGradients?.dQ, dtype: dtype))
      checks.append(VerificationCheck("dk", actual: dKValues, expected: gradients.dK, baseline: baselineGradients?.dK, dtype: dtype))
      checks.append(VerificationCheck("dv", actual: dVValues, expected: gradients.dV, baseline: baselineGradients?.dV, dtype: dtype))
      violations += unseen.rowViolations("dq", dQValues, width: shape.headDim)
      violations += unseen.keyViolations("dk", dKValues, width: shape.headDim)
      violations += unseen.keyViolations("dv", dVValues, width: shape.headDimV)

      if options.deterministic {
        // Deterministic means the same bits on every run, not only a small error.
        let again = [shape.qShape, shape.kShape, shape.vShape].map { HostTensor(shape: $0, dtype: dtype) }
        beforeEachPass(.backward)
        try engine.backward(
          q: q, k: k, v: v, out: out.view, lse: lse.view, dOut: dOut, dQ: again[0].view, dK: again[1].view,
          dV: again[2].view, options: options)
        for (name, first, second) in [("dq", dQ, again[0]), ("dk", dK, again[1]), ("dv", dV, again[2])]
        where !sameBytes(first, second) {
          violations.append("deterministic backward: \(name) differs between two runs on the same inputs")
        }
      }
      return result(nil)
    } catch {
      var failed = result(error.description)
      if case .unsupported = error, checks.isEmpty { failed.unsupported = true }
      return failed
    }
  }

  private func sameBytes(_ a: HostTensor, _ b: HostTensor) -> Bool {
    a.byteCount == b.byteCount && memcmp(a.storage, b.storage, a.byteCount) == 0
  }
}

/// Seconds elapsed since `start`.
private func seconds(since start: ContinuousClock.Instant) -> Double {
  let parts = (ContinuousClock.now - start).components
  return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
}
