import FlashAttention
import FlashAttentionTestSupport
import Testing

/// fp8 (e4m3) inputs: the conversion, the argument rules, and the CPU forward against the
/// float64 reference on the dequantised inputs.
@Suite("fp8 e4m3 forward")
struct Float8Tests {
  @Test("every finite e4m3 value survives decode and encode")
  func conversionRoundTrips() {
    for bits in 0...255 {
      let byte = UInt8(bits)
      let value = Float8E4M3Conversion.float(fromBits: byte)
      if byte & 0x7F == 0x7F {
        #expect(value.isNaN)
        #expect(Float8E4M3Conversion.bits(from: value) == 0x7F)
      } else {
        #expect(Float8E4M3Conversion.bits(from: value) == byte, "bits \(bits) -> \(value)")
      }
    }
  }

  @Test("encoding rounds to nearest even and saturates at 448")
  func conversionRoundsAndSaturates() {
    #expect(Float8E4M3Conversion.float(fromBits: 0x7E) == 448)
    #expect(Float8E4M3Conversion.float(fromBits: 0x01) == 0x1p-9)
    #expect(Float8E4M3Conversion.bits(from: 500) == 0x7E)
    #expect(Float8E4M3Conversion.bits(from: -.infinity) == 0xFE)
    // 1 + 1/16 lies halfway between 1 and 1.125: to even (1).
    #expect(Float8E4M3Conversion.float(fromBits: Float8E4M3Conversion.bits(from: 1.0625)) == 1)
    #expect(Float8E4M3Conversion.float(fromBits: Float8E4M3Conversion.bits(from: 1.1875)) == 1.25)
    // Halfway between the largest subnormal (7 * 2^-9) and 2^-6: to even (2^-6).
    #expect(Float8E4M3Conversion.float(fromBits: Float8E4M3Conversion.bits(from: 7.5 * 0x1p-9)) == 0x1p-6)
    #expect(Float8E4M3Conversion.bits(from: 0x1p-11) == 0)
  }

  @Test("the fp8 matrix passes on the CPU", arguments: VerificationMatrix.float8.filter { $0.shape.seqlenQ * $0.shape.seqlenK <= 40_000 })
  func matrixPasses(testCase: AttentionProblem) throws {
    let result = Verification(engine: try TestEngines.cpu()).run(testCase, dtype: .float8E4M3)
    #expect(result.passed, "\(result.summary)")
  }

  @Test("descales change the result as dequantisation says")
  func descaleIsApplied() throws {
    let shape = AttentionShape(batch: 2, seqlenQ: 5, seqlenK: 9, headsQ: 4, headsKV: 2, headDim: 16)
    var random = VerificationRandom(seed: 7)
    let q = random.tensor(shape.qShape, dtype: .float8E4M3)
    let k = random.tensor(shape.kShape, dtype: .float8E4M3)
    let v = random.tensor(shape.vShape, dtype: .float8E4M3)
    let factors = [Float]([0.5, 2, 1.5, 0.25])
    let descale = FP8Descale(
      q: HostTensor(factors, shape: [2, 2]).view, k: HostTensor(factors.reversed(), shape: [2, 2]).view,
      v: HostTensor(factors, shape: [2, 2]).view)
    let out = HostTensor(shape: shape.oShape, dtype: .float16)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    try TestEngines.cpu().forward(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, descale: descale)
    let reference = try ReferenceAttention.forward(
      q: q.view, k: k.view, v: v.view, descale: descale, options: AttentionOptions())
    let error = ErrorMetrics(actual: out.floats(), expected: reference.out)
    #expect(error.relativeL2 < 2e-3, "fp16 output of the dequantised problem: \(error.relativeL2)")
    let plain = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: AttentionOptions())
    #expect(ErrorMetrics(actual: out.floats(), expected: plain.out).relativeL2 > 1e-2, "descales ignored")
  }

  @Test("wrong fp8 calls are refused with the argument named")
  func refusals() throws {
    let engine = try TestEngines.cpu()
    let shape = AttentionShape(batch: 1, seqlenQ: 4, headsQ: 2, headDim: 16)
    let q = HostTensor(shape: shape.qShape, dtype: .float8E4M3)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    func name(_ body: () throws -> Void) -> String? {
      do {
        try body()
        return nil
      } catch {
        guard case let .invalidArgument(name, _, _) = error as? FlashAttentionError else { return "\(error)" }
        return name
      }
    }
    let fp8Out = HostTensor(shape: shape.oShape, dtype: .float8E4M3)
    #expect(name { try engine.forward(q: q.view, k: q.view, v: q.view, out: fp8Out.view, lse: lse.view) } == "out.dtype")
    let bf16 = HostTensor(shape: shape.qShape, dtype: .bfloat16)
    let descale = FP8Descale(q: HostTensor([1], shape: [1, 1]).view)
    #expect(
      name { try engine.forward(q: bf16.view, k: bf16.view, v: bf16.view, out: bf16.view, lse: lse.view, descale: descale) }
        == "q_descale")
    let out = HostTensor(shape: shape.oShape, dtype: .bfloat16)
    let wrongShape = FP8Descale(k: HostTensor([1, 1, 1], shape: [1, 3]).view)
    #expect(
      name { try engine.forward(q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, descale: wrongShape) }
        == "k_descale.shape")
    let gradient = HostTensor(shape: shape.qShape, dtype: .float8E4M3)
    #expect(
      name {
        try engine.backward(
          q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, dOut: out.view, dQ: gradient.view,
          dK: gradient.view, dV: gradient.view)
      } == "q.dtype")
  }

  @Test("a damaged fp8 forward fails verification")
  func damagedFails() throws {
    let backend = VerificationTests.DamagedBackend(inner: try TestEngines.cpu().backend, damage: .skipsOutput)
    let result = Verification(engine: AttentionEngine(backend: backend)).run(VerificationTests.testCase, dtype: .float8E4M3)
    #expect(!result.passed, "\(result.summary)")
  }
}
