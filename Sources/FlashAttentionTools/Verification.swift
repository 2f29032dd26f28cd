#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs verification cases on an engine: fresh random inputs, NaN-poisoned outputs, forward and
/// backward compared with the float64 reference under ``VerificationRule``.
///
/// ```swift
/// let verification = Verification(engine: try AttentionEngine(backend: .cpu))
/// for testCase in VerificationMatrix.standard {
///   let result = verification.run(testCase, dtype: .float16)
///   print(result.name, result.passed)
/// }
/// ```
public struct Verification: Sendable {
  public let engine: AttentionEngine

  public init(engine: AttentionEngine) {
    self.engine = engine
  }

  /// Runs one case. Never throws: a backend error becomes the result's `error` (a failure).
  ///
  /// - Parameters:
  ///   - testCase: the problem.
  ///   - dtype: storage dtype of Q, K, V, dO and the outputs.
  ///   - seed: seed of the random inputs; a fresh one by default (it is in the result).
  public func run(
    _ testCase: VerificationCase, dtype: DType, seed: UInt64 = UInt64.random(in: 1...UInt64.max)
  ) -> VerificationResult {
    if dtype.isFloat8 { return runFloat8(testCase, seed: seed) }
    var random = VerificationRandom(seed: seed)
    let shape = testCase.shape
    let q = random.input(shape.qShape, dtype: dtype, strided: testCase.stridedInputs)
    let k = random.input(shape.kShape, dtype: dtype, strided: testCase.stridedInputs)
    let v = random.input(shape.vShape, dtype: dtype, strided: testCase.stridedInputs)
    if testCase.outliers {
      q.view.addOutlierChannels()
      k.view.addOutlierChannels()
    }
    let dOut = random.input(shape.oShape, dtype: dtype, strided: testCase.stridedInputs)
    var checks: [VerificationCheck] = []
    var forwardSeconds: Double?
    var backwardSeconds: Double?
    func result(_ error: String?) -> VerificationResult {
      VerificationResult(
        testCase: testCase, dtype: dtype, backend: engine.backend.name, seed: seed, checks: checks,
        error: error, forwardSeconds: forwardSeconds, backwardSeconds: backwardSeconds)
    }
    let options = testCase.options
    let out = HostTensor(shape: shape.oShape, dtype: dtype)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    do {
      let start = ContinuousClock.now
      try engine.forward(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options)
      forwardSeconds = seconds(since: start)
      let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
      let baseline =
        dtype == .float32
        ? nil : try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: options)
      checks.append(check("out", out.floats(), reference.out, baseline?.out, dtype: dtype))
      checks.append(check("lse", lse.floats(), reference.lse, nil, dtype: .float32))
      guard testCase.backward else { return result(nil) }
      let dQ = HostTensor(shape: shape.qShape, dtype: dtype)
      let dK = HostTensor(shape: shape.kShape, dtype: dtype)
      let dV = HostTensor(shape: shape.vShape, dtype: dtype)
      let backwardStart = ContinuousClock.now
      try engine.backward(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view,
        dK: dK.view, dV: dV.view, options: options)
      backwardSeconds = seconds(since: backwardStart)
      let gradients = try ReferenceAttention.backward(
        q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
      let baselineGradients =
        dtype == .float32
        ? nil
        : try ReferenceAttention.samePrecisionBackward(
          q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
      checks.append(check("dq", dQ.floats(), gradients.dQ, baselineGradients?.dQ, dtype: dtype))
      checks.append(check("dk", dK.floats(), gradients.dK, baselineGradients?.dK, dtype: dtype))
      checks.append(check("dv", dV.floats(), gradients.dV, baselineGradients?.dV, dtype: dtype))
      if options.deterministic {
        // Deterministic means the same bits on every run, not only a small error.
        let again = [shape.qShape, shape.kShape, shape.vShape].map { HostTensor(shape: $0, dtype: dtype) }
        try engine.backward(
          q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: again[0].view,
          dK: again[1].view, dV: again[2].view, options: options)
        for (name, first, second) in [("dq", dQ, again[0]), ("dk", dK, again[1]), ("dv", dV, again[2])]
        where !sameBytes(first, second) {
          return result("deterministic backward: \(name) differs between two runs on the same inputs")
        }
      }
      return result(nil)
    } catch {
      return result(error.description)
    }
  }

  private func sameBytes(_ a: HostTensor, _ b: HostTensor) -> Bool {
    a.byteCount == b.byteCount && memcmp(a.storage, b.storage, a.byteCount) == 0
  }

  func check(
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

/// Seeded random inputs (SplitMix64, Box–Muller normals) for verification and demos. A strided
/// input lives in a buffer with 8 extra NaN elements per row, so a kernel that ignores the
/// strides reads NaN and fails.
public struct VerificationRandom: RandomNumberGenerator, Sendable {
  var state: UInt64

  public init(seed: UInt64) { state = seed }

  /// A host tensor of standard normal values.
  public mutating func tensor(_ shape: [Int], dtype: DType) -> HostTensor {
    input(shape, dtype: dtype, strided: false).storage
  }

  /// A host tensor of standard normal values whose shape may come from a user.
  ///
  /// - Throws: as `HostTensor(shape:dtype:name:)`: a shape too large, or not enough memory.
  public mutating func tensor(_ shape: [Int], dtype: DType, name: String) throws(FlashAttentionError) -> HostTensor {
    let tensor = try HostTensor(shape: shape, dtype: dtype, name: name)
    let view = tensor.view
    for offset in 0..<tensor.elementCount { view.storeFloat(normal(), atElementOffset: offset) }
    return tensor
  }

  /// SplitMix64.
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A standard normal value (Box–Muller).
  public mutating func normal() -> Float {
    let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
    let u2 = Double.random(in: 0..<1, using: &self)
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }

  /// A tensor of standard normal values, owning its storage for the view it returns.
  mutating func input(_ shape: [Int], dtype: DType, strided: Bool) -> StridedInput {
    var storageShape = shape
    // 8 elements, and 16 for 1-byte types: rows stay 16-byte aligned for TMA.
    if strided { storageShape[storageShape.count - 1] += dtype.byteSize == 1 ? 16 : 8 }
    let storage = HostTensor(shape: storageShape, dtype: dtype)
    let view = TensorView(
      baseAddress: storage.storage, dtype: dtype, shape: shape,
      strides: TensorView.contiguousStrides(for: storageShape), owner: storage)
    if strided {
      for offset in view.elementOffsets() { view.storeFloat(normal(), atElementOffset: offset) }
    } else {
      for offset in 0..<view.elementCount { view.storeFloat(normal(), atElementOffset: offset) }
    }
    return StridedInput(storage: storage, view: view)
  }
}

/// A view together with the tensor that owns its memory.
struct StridedInput {
  let storage: HostTensor
  let view: TensorView
}

/// Seconds elapsed since `start`.
private func seconds(since start: ContinuousClock.Instant) -> Double {
  let parts = (ContinuousClock.now - start).components
  return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
}

extension TensorView {
  /// The element offsets of every element, in row-major order of the shape (any rank).
  public func elementOffsets() -> [Int] {
    var offsets = [0]
    for axis in 0..<shape.count {
      offsets = offsets.flatMap { base in (0..<shape[axis]).map { base + $0 * strides[axis] } }
    }
    return offsets
  }

  /// Every element widened to Float, in row-major order of the shape (any strides).
  public func gatherFloats() -> [Float] {
    elementOffsets().map { loadFloat(atElementOffset: $0) }
  }
}
