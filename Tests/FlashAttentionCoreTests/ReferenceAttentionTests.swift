import FlashAttentionCore
import FlashAttentionTestSupport
import Foundation
import Testing

@Suite("ReferenceAttention: the float64 ground truth")
struct ReferenceAttentionTests {
  @Test("one query, two keys: softmax weights by hand")
  func handComputed() throws {
    // scale 1: scores 1 and 3, weights e/(e+e^3) and e^3/(e+e^3).
    let q = HostTensor([1, 0], shape: [1, 1, 1, 2])
    let k = HostTensor([1, 0, 3, 0], shape: [1, 2, 1, 2])
    let v = HostTensor([10, 0, 0, 20], shape: [1, 2, 1, 2])
    let result = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: AttentionOptions(scale: 1))
    let w0 = exp(1.0) / (exp(1.0) + exp(3.0))
    #expect(abs(result.out[0] - 10 * w0) < 1e-12)
    #expect(abs(result.out[1] - 20 * (1 - w0)) < 1e-12)
    #expect(abs(result.lse[0] - log(exp(1.0) + exp(3.0))) < 1e-12)
  }

  @Test("a row with no visible key: output 0 and LSE -inf")
  func emptyRows() throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 1, seqlenQ: 4, seqlenK: 2, headsQ: 1, headDim: 4)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let result = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: AttentionOptions(causal: true))
    // offset -2: rows 0 and 1 see nothing.
    #expect(result.out[0..<8].allSatisfy { $0 == 0 })
    #expect(result.lse[0] == -.infinity && result.lse[1] == -.infinity)
    #expect(result.lse[2].isFinite && result.lse[3].isFinite)
  }

  /// `sum(out * dOut)` of the float64 forward.
  static func loss(
    _ q: HostTensor, _ k: HostTensor, _ v: HostTensor, _ dOut: [Float], _ options: AttentionOptions
  ) throws -> Double {
    let out = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options).out
    return zip(out, dOut).reduce(0) { $0 + $1.0 * Double($1.1) }
  }

  @Test(
    "backward matches central finite differences of the forward",
    arguments: [
      AttentionOptions(),
      AttentionOptions(causal: true, softcap: 1.5),
      AttentionOptions(scale: 0.7, window: SlidingWindow(left: 1, right: 1)),
    ])
  func finiteDifferences(options: AttentionOptions) throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 1, seqlenQ: 3, seqlenK: 4, headsQ: 2, headsKV: 1, headDim: 3, headDimV: 2)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let dOutValues = random.normals(shape.oShape.reduce(1, *))
    let dOut = HostTensor(dOutValues, shape: shape.oShape)
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    // Float storage limits the step: h = 1e-2 keeps both truncation (h^2) and rounding small.
    let h: Float = 1e-2
    for (name, tensor, analytic) in [("q", q, gradients.dQ), ("k", k, gradients.dK), ("v", v, gradients.dV)] {
      for index in 0..<tensor.elementCount {
        let original = tensor.view.loadFloat(atElementOffset: index)
        tensor.view.storeFloat(original + h, atElementOffset: index)
        let plus = try Self.loss(q, k, v, dOutValues, options)
        tensor.view.storeFloat(original - h, atElementOffset: index)
        let minus = try Self.loss(q, k, v, dOutValues, options)
        tensor.view.storeFloat(original, atElementOffset: index)
        let numeric = (plus - minus) / (Double(original + h) - Double(original - h))
        #expect(
          abs(numeric - analytic[index]) <= 2e-3 * max(1, abs(numeric)),
          "d\(name)[\(index)]: numeric \(numeric) vs analytic \(analytic[index]), seed \(random.seed)")
      }
    }
  }
}

@Suite("Same-precision standard attention: the fp16/bf16 yardstick")
struct SamePrecisionTests {
  static let shape = AttentionShape(batch: 1, seqlenQ: 19, seqlenK: 23, headsQ: 4, headsKV: 2, headDim: 16)

  @Test("in float32 it agrees with the float64 reference to float32 accuracy")
  func float32() throws {
    var random = TestRandom()
    let q = random.tensor(Self.shape.qShape)
    let k = random.tensor(Self.shape.kShape)
    let v = random.tensor(Self.shape.vShape)
    let dOut = random.tensor(Self.shape.oShape)
    let options = AttentionOptions(causal: true, softcap: 3)
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
    let same = try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: options)
    #expect(ErrorMetrics(actual: same.out.map { Float($0) }, expected: reference.out).relativeL2 < 1e-5, "seed \(random.seed)")
    #expect(ErrorMetrics(actual: same.lse.map { Float($0) }, expected: reference.lse).relativeL2 < 1e-5, "seed \(random.seed)")
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    let sameGradients = try ReferenceAttention.samePrecisionBackward(
      q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    for (actual, expected) in [
      (sameGradients.dQ, gradients.dQ), (sameGradients.dK, gradients.dK), (sameGradients.dV, gradients.dV),
    ] {
      #expect(ErrorMetrics(actual: actual.map { Float($0) }, expected: expected).relativeL2 < 1e-5, "seed \(random.seed)")
    }
  }

  @Test("in fp16 and bf16 its error is that of the storage format", arguments: [DType.float16, .bfloat16])
  func lowPrecision(dtype: DType) throws {
    var random = TestRandom()
    let q = random.tensor(Self.shape.qShape, dtype: dtype)
    let k = random.tensor(Self.shape.kShape, dtype: dtype)
    let v = random.tensor(Self.shape.vShape, dtype: dtype)
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: AttentionOptions())
    let same = try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: AttentionOptions())
    let error = ErrorMetrics(actual: same.out.map { Float($0) }, expected: reference.out).relativeL2
    // Rounding P and O costs a few units of roundoff, never nothing and never much more.
    #expect(error > 0.05 * dtype.unitRoundoff && error < 8 * dtype.unitRoundoff, "error \(error), seed \(random.seed)")
  }

  @Test("DType.rounded rounds to the storage format")
  func rounding() {
    #expect(DType.float32.rounded(1 + 0x1p-20) == 1 + 0x1p-20)
    #expect(DType.float16.rounded(1 + 0x1p-12) == 1)
    #expect(DType.bfloat16.rounded(1 + 0x1p-7) == 1 + 0x1p-7)
    #expect(DType.bfloat16.rounded(1 + 0x1p-9) == 1)
  }
}

@Suite("ErrorMetrics")
struct ErrorMetricsTests {
  @Test("NaN never passes; matching infinities are equal")
  func nonFinite() {
    #expect(!ErrorMetrics(actual: [1, .nan], expected: [1, 2]).passes(tolerance: 1))
    #expect(ErrorMetrics(actual: [-.infinity, 1], expected: [-.infinity, 1]).passes(tolerance: 0))
    #expect(!ErrorMetrics(actual: [.infinity, 1], expected: [-.infinity, 1]).passes(tolerance: 1))
    #expect(!ErrorMetrics(actual: [0, 1], expected: [-.infinity, 1]).passes(tolerance: 1))
  }

  @Test("relative L2 error")
  func relative() {
    let metrics = ErrorMetrics(actual: [3, 4.5], expected: [3, 4])
    #expect(abs(metrics.relativeL2 - 0.1) < 1e-12)
    #expect(metrics.maxAbsolute == 0.5)
  }
}
