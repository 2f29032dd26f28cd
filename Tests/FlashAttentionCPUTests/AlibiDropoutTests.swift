import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Slopes of FlashAttention's ALiBi recipe (`2^(-8 (h + 1) / heads)`), shuffled per batch entry
/// for a `(batch, heads_q)` table so that a kernel reading the wrong row fails.
func alibiSlopes(heads: Int, batch: Int? = nil) -> AlibiSlopes {
  let perHead = (0..<heads).map { Float(pow(2.0, -8.0 * Double($0 + 1) / Double(heads))) }
  guard let batch else { return AlibiSlopes(perHead: perHead) }
  var values: [Float] = []
  for b in 0..<batch { values += perHead.map { $0 * Float(b + 1) * 0.7 } }
  return AlibiSlopes(batch: batch, values: values)
}

/// One ALiBi or dropout problem for the CPU: the shared pass rule (`expectPasses`) runs it on
/// every instruction set, with all threads and with one (the split and unsplit work orders).
struct AttentionCase: CustomStringConvertible, Sendable {
  var batch = 1
  var seqlenQ: Int
  var seqlenK: Int
  var headsQ = 2
  var headsKV = 2
  var headDim = 64
  var headDimV: Int? = nil
  var options = AttentionOptions()
  var dtype = DType.float32
  var threads: Int? = nil

  var problem: AttentionProblem {
    AttentionProblem(
      description,
      AttentionShape(
        batch: batch, seqlenQ: seqlenQ, seqlenK: seqlenK, headsQ: headsQ, headsKV: headsKV, headDim: headDim,
        headDimV: headDimV),
      options)
  }

  var description: String { "b\(batch)-\(seqlenQ)x\(seqlenK)-h\(headsQ)/\(headsKV)-d\(headDim)" }
}

func expectMatchesReference(_ c: AttentionCase) throws {
  for instructionSet in CPUInstructionSet.supported {
    let engine = AttentionEngine(backend: try CPUBackend(threads: c.threads, instructionSet: instructionSet))
    expectPasses(c.problem, dtype: c.dtype, engine: engine)
  }
}

func dropout(_ p: Float, seed: UInt64 = 0x1234_5678_9abc_def0, offset: UInt64 = 7) -> AttentionDropout {
  AttentionDropout(probability: p, seed: seed, offset: offset)
}

@Suite("ALiBi on the CPU against the float64 reference")
struct CPUAlibiTests {
  @Test("shapes, masks, softcap, GQA and storage", arguments: [
    AttentionCase(seqlenQ: 1, seqlenK: 1, headsQ: 1, headsKV: 1, headDim: 1, options: AttentionOptions(alibiSlopes: alibiSlopes(heads: 1))),
    AttentionCase(seqlenQ: 7, seqlenK: 17, headDim: 7, headDimV: 9, options: AttentionOptions(alibiSlopes: alibiSlopes(heads: 2))),
    AttentionCase(
      batch: 2, seqlenQ: 129, seqlenK: 129, headDim: 64,
      options: AttentionOptions(causal: true, alibiSlopes: alibiSlopes(heads: 2, batch: 2))),
    AttentionCase(
      seqlenQ: 1, seqlenK: 1000, headsQ: 1, headsKV: 1, headDim: 128,
      options: AttentionOptions(alibiSlopes: AlibiSlopes(perHead: [0.01]))),
    AttentionCase(
      seqlenQ: 200, seqlenK: 130, headDim: 33, options: AttentionOptions(causal: true, alibiSlopes: alibiSlopes(heads: 2))),
    AttentionCase(
      seqlenQ: 257, seqlenK: 257, headsQ: 4, headsKV: 2, headDim: 40, headDimV: 24,
      options: AttentionOptions(window: SlidingWindow(left: 20, right: 5), alibiSlopes: alibiSlopes(heads: 4))),
    AttentionCase(
      seqlenQ: 150, seqlenK: 97, headDim: 64,
      options: AttentionOptions(scale: 0.3, softcap: 2, alibiSlopes: alibiSlopes(heads: 2))),
    AttentionCase(
      seqlenQ: 150, seqlenK: 97, headsQ: 6, headsKV: 2, headDim: 80,
      options: AttentionOptions(alibiSlopes: alibiSlopes(heads: 6))),
    AttentionCase(
      batch: 2, seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64,
      options: AttentionOptions(causal: true, alibiSlopes: alibiSlopes(heads: 4, batch: 2)), dtype: .bfloat16),
    AttentionCase(
      seqlenQ: 65, seqlenK: 65, headDim: 24, options: AttentionOptions(softcap: 3, alibiSlopes: alibiSlopes(heads: 2)),
      dtype: .float16),
  ])
  func matches(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
    var split = c
    split.threads = 1
    try expectMatchesReference(split)
  }

  @Test("a slope table of the wrong shape or a non-finite slope is refused")
  func validation() {
    let shape = AttentionShape(batch: 2, seqlenQ: 4, seqlenK: 4, headsQ: 3, headsKV: 1, headDim: 8)
    for slopes in [AlibiSlopes(perHead: [1, 2]), AlibiSlopes(batch: 3, values: [Float](repeating: 1, count: 9)),
      AlibiSlopes(perHead: [1, .nan, 2])] {
      #expect(throws: FlashAttentionError.self) {
        try AttentionOptions(alibiSlopes: slopes).validate(batch: shape.batch, headsQ: shape.headsQ)
      }
    }
  }
}

@Suite("Dropout on the CPU")
struct CPUDropoutTests {
  @Test("exact against the float64 reference given the same keep mask", arguments: [
    AttentionCase(seqlenQ: 1, seqlenK: 1, headsQ: 1, headsKV: 1, headDim: 1, options: AttentionOptions(dropout: dropout(0.3))),
    AttentionCase(seqlenQ: 7, seqlenK: 17, headDim: 7, headDimV: 9, options: AttentionOptions(dropout: dropout(0.5))),
    AttentionCase(
      batch: 2, seqlenQ: 129, seqlenK: 129, headDim: 64, options: AttentionOptions(causal: true, dropout: dropout(0.1))),
    AttentionCase(seqlenQ: 1, seqlenK: 1000, headsQ: 1, headsKV: 1, headDim: 128, options: AttentionOptions(dropout: dropout(0.2))),
    AttentionCase(
      seqlenQ: 257, seqlenK: 257, headsQ: 4, headsKV: 2, headDim: 40, headDimV: 24,
      options: AttentionOptions(window: SlidingWindow(left: 20, right: 5), dropout: dropout(0.25))),
    AttentionCase(
      seqlenQ: 150, seqlenK: 97, headDim: 64,
      options: AttentionOptions(softcap: 2, alibiSlopes: alibiSlopes(heads: 2), dropout: dropout(0.4))),
    AttentionCase(
      batch: 2, seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64,
      options: AttentionOptions(causal: true, dropout: dropout(0.1)), dtype: .bfloat16),
  ])
  func matches(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
    var single = c
    single.threads = 1
    try expectMatchesReference(single)
  }

  /// With q = k = 0 every visible key weighs 1/N, and with v = 1 each output is the row's kept
  /// fraction divided by 1 - p: the kernel's own mask, counted over 4M entries.
  @Test("the kept fraction is within 0.01 of 1 - p", arguments: [Float(0.1), 0.5, 0.9])
  func keptFraction(_ p: Float) throws {
    let shape = AttentionShape(batch: 2, seqlenQ: 1024, seqlenK: 1024, headsQ: 2, headsKV: 2, headDim: 16)
    let q = HostTensor(shape: shape.qShape, dtype: .float32)
    let k = HostTensor(shape: shape.kShape, dtype: .float32)
    let v = HostTensor(shape: shape.vShape, dtype: .float32)
    q.fill(0)
    k.fill(0)
    v.fill(1)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let options = AttentionOptions(dropout: dropout(p, seed: UInt64.random(in: 0...UInt64.max)))
    try CPUBackend().forward(
      ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options))
    let values = out.floats()
    var total = 0.0
    for row in stride(from: 0, to: values.count, by: shape.headDim) { total += Double(values[row]) }
    let kept = total / Double(values.count / shape.headDim) * (1 - Double(p))
    #expect(abs(kept - (1 - Double(p))) < 0.01, "kept \(kept) for p = \(p)")
    // The LSE is the undropped softmax's: ln(N).
    let expected = Float(log(1024.0))
    #expect(lse.floats().allSatisfy { abs($0 - expected) < 1e-5 })
  }

  @Test("the same seed and offset give the same bits; another offset another mask")
  func reproducible() throws {
    let shape = AttentionShape(batch: 1, seqlenQ: 300, seqlenK: 200, headsQ: 2, headsKV: 1, headDim: 32)
    var random = TestRandom()
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    func run(offset: UInt64, threads: Int) throws -> [Float] {
      let out = HostTensor(shape: shape.oShape, dtype: .float32)
      let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
      let options = AttentionOptions(causal: true, dropout: dropout(0.3, seed: 99, offset: offset))
      try CPUBackend(threads: threads).forward(
        ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options))
      return out.floats()
    }
    let first = try run(offset: 0, threads: 2)
    #expect(try run(offset: 0, threads: 1).map(\.bitPattern) == first.map(\.bitPattern))
    #expect(try run(offset: 0, threads: 2).map(\.bitPattern) == first.map(\.bitPattern))
    #expect(try run(offset: 1, threads: 2) != first)
  }

  @Test("a probability outside [0, 1) is refused", arguments: [Float(1), -0.1, .nan])
  func validation(_ p: Float) {
    #expect(throws: FlashAttentionError.self) { try AttentionOptions(dropout: dropout(p)).validate() }
  }
}

/// Central differences of `sum(out · dOut)` of the float64 reference forward against the
/// reference's backward and the CPU backend's, on tiny problems with ALiBi, dropout, softcap
/// and a window: checks the gradient formulas themselves, not only agreement with them.
@Suite("ALiBi and dropout gradients by finite differences")
struct FiniteDifferenceTests {
  @Test("dQ, dK, dV", arguments: [
    AttentionOptions(alibiSlopes: alibiSlopes(heads: 2), dropout: dropout(0.3)),
    AttentionOptions(causal: true, softcap: 2, alibiSlopes: alibiSlopes(heads: 2, batch: 1), dropout: dropout(0.5)),
    AttentionOptions(window: SlidingWindow(left: 2, right: 1), dropout: dropout(0.2, offset: 3)),
  ])
  func gradients(_ options: AttentionOptions) throws {
    let shape = AttentionShape(batch: 1, seqlenQ: 5, seqlenK: 6, headsQ: 2, headsKV: 1, headDim: 3)
    var random = TestRandom()
    let seed = random.seed
    let tensors = [random.tensor(shape.qShape), random.tensor(shape.kShape), random.tensor(shape.vShape)]
    let dOut = random.tensor(shape.oShape)
    let dOutValues = dOut.floats().map(Double.init)
    func loss() throws -> Double {
      let result = try ReferenceAttention.forward(q: tensors[0].view, k: tensors[1].view, v: tensors[2].view, options: options)
      return zip(result.out, dOutValues).reduce(0) { $0 + $1.0 * $1.1 }
    }
    let reference = try ReferenceAttention.backward(
      q: tensors[0].view, k: tensors[1].view, v: tensors[2].view, dOut: dOut.view, options: options)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let grads = [HostTensor(shape: shape.qShape, dtype: .float32), HostTensor(shape: shape.kShape, dtype: .float32),
      HostTensor(shape: shape.vShape, dtype: .float32)]
    let backend = try CPUBackend()
    try backend.forward(
      ForwardArguments(q: tensors[0].view, k: tensors[1].view, v: tensors[2].view, out: out.view, lse: lse.view, options: options))
    try backend.backward(
      BackwardArguments(
        q: tensors[0].view, k: tensors[1].view, v: tensors[2].view, out: out.view, lse: lse.view, dOut: dOut.view,
        dQ: grads[0].view, dK: grads[1].view, dV: grads[2].view, options: options))
    let step: Float = 1.0 / 1024
    for (index, (tensor, expected)) in zip(tensors, [reference.dQ, reference.dK, reference.dV]).enumerated() {
      let computed = grads[index].floats()
      let view = tensor.view
      for element in 0..<tensor.elementCount {
        let original = view.loadFloat(atElementOffset: element)
        view.storeFloat(original + step, atElementOffset: element)
        let up = try loss()
        view.storeFloat(original - step, atElementOffset: element)
        let down = try loss()
        view.storeFloat(original, atElementOffset: element)
        let numeric = (up - down) / (2 * Double(step))
        #expect(abs(numeric - expected[element]) < 1e-4 * max(1, abs(numeric)), "tensor \(index)[\(element)] reference \(expected[element]) numeric \(numeric), seed \(seed)")
        #expect(abs(numeric - Double(computed[element])) < 2e-4 * max(1, abs(numeric)), "tensor \(index)[\(element)] cpu \(computed[element]) numeric \(numeric), seed \(seed)")
      }
    }
  }
}
