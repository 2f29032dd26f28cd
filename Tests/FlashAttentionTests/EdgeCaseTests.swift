import FlashAttention
import FlashAttentionTestSupport
import Testing

/// Rows that see no key, empty sequences, outputs written through strided views, and a gradient
/// check of the CPU backend by finite differences.
@Suite("Edge cases: empty rows and sequences, poisoned outputs, finite differences")
struct EdgeCaseTests {
  @Test(
    "a row with no visible key: output exactly 0, LSE -inf, dQ 0, no NaN",
    arguments: [
      AttentionOptions(causal: true),
      AttentionOptions(window: SlidingWindow(left: 2, right: 0)),
    ])
  func rowsWithoutKeys(options: AttentionOptions) throws {
    var random = TestRandom()
    // seqlen_q - seqlen_k = 20: rows 0 ..< 20 see no key under both masks.
    let shape = AttentionShape(batch: 2, seqlenQ: 27, seqlenK: 7, headsQ: 4, headsKV: 2, headDim: 40)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let engine = try TestEngines.cpu()
    let (out, lse) = try engine.forward(q: q, k: k, v: v, options: options)
    let mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    let dOut = random.tensor(shape.oShape)
    let gradients = try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, options: options)
    let outValues = out.floats()
    let lseValues = lse.floats()
    let dQValues = gradients.dQ.floats()
    var emptyRows = 0
    for b in 0..<shape.batch {
      for i in 0..<shape.seqlenQ where mask.visibleKeys(forQuery: i).isEmpty {
        emptyRows += 1
        for h in 0..<shape.headsQ {
          let row = ((b * shape.seqlenQ + i) * shape.headsQ + h)
          #expect(outValues[(row * shape.headDimV)..<((row + 1) * shape.headDimV)].allSatisfy { $0 == 0 })
          #expect(dQValues[(row * shape.headDim)..<((row + 1) * shape.headDim)].allSatisfy { $0 == 0 })
          #expect(lseValues[(b * shape.headsQ + h) * shape.seqlenQ + i] == -.infinity, "seed \(random.seed)")
        }
      }
    }
    #expect(emptyRows == 2 * 20)
    for values in [outValues, dQValues, gradients.dK.floats(), gradients.dV.floats()] {
      #expect(!values.contains { $0.isNaN }, "seed \(random.seed)")
    }
  }

  @Test("seqlen_k = 0: output 0, LSE -inf, dQ 0")
  func noKeys() throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 1, seqlenQ: 5, seqlenK: 0, headsQ: 2, headDim: 16)
    let q = random.tensor(shape.qShape)
    let k = HostTensor(shape: shape.kShape, dtype: .float32)
    let v = HostTensor(shape: shape.vShape, dtype: .float32)
    let engine = try TestEngines.cpu()
    let (out, lse) = try engine.forward(q: q, k: k, v: v)
    #expect(out.floats().allSatisfy { $0 == 0 })
    #expect(lse.floats().allSatisfy { $0 == -.infinity })
    let gradients = try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: random.tensor(shape.oShape))
    #expect(gradients.dQ.floats().allSatisfy { $0 == 0 })
  }

  @Test("seqlen_q = 0: empty outputs, and dK = dV = 0 in the backward pass")
  func noQueries() throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 2, seqlenQ: 0, seqlenK: 6, headsQ: 2, headDim: 16)
    let q = HostTensor(shape: shape.qShape, dtype: .float32)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let engine = try TestEngines.cpu()
    let (out, lse) = try engine.forward(q: q, k: k, v: v)
    #expect(out.elementCount == 0 && lse.elementCount == 0)
    let gradients = try engine.backward(
      q: q, k: k, v: v, out: out, lse: lse, dOut: HostTensor(shape: shape.oShape, dtype: .float32))
    #expect(gradients.dK.floats().allSatisfy { $0 == 0 }, "no query attends, so no key has a gradient")
    #expect(gradients.dV.floats().allSatisfy { $0 == 0 })
  }

  @Test("outputs through strided views: every element written, the padding between rows untouched")
  func stridedOutputs() throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 2, seqlenQ: 13, seqlenK: 21, headsQ: 4, headsKV: 2, headDim: 24)
    let options = AttentionOptions(causal: true)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let dOut = random.tensor(shape.oShape)
    let engine = try TestEngines.cpu()
    /// A NaN-filled buffer with 5 extra elements per row, and the view of its first columns.
    func padded(_ shape: [Int]) -> (HostTensor, TensorView) {
      var storageShape = shape
      storageShape[storageShape.count - 1] += 5
      let storage = HostTensor(shape: storageShape, dtype: .float32)
      let view = TensorView(
        baseAddress: storage.storage, dtype: .float32, shape: shape,
        strides: TensorView.contiguousStrides(for: storageShape))
      return (storage, view)
    }
    let (outStorage, out) = padded(shape.oShape)
    let (lseStorage, lse) = padded(shape.lseShape)
    try engine.forward(q: q.view, k: k.view, v: v.view, out: out, lse: lse, options: options)
    let (dQStorage, dQ) = padded(shape.qShape)
    let (dKStorage, dK) = padded(shape.kShape)
    let (dVStorage, dV) = padded(shape.vShape)
    try engine.backward(
      q: q.view, k: k.view, v: v.view, out: out, lse: lse, dOut: dOut.view, dQ: dQ, dK: dK, dV: dV, options: options)
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    for (name, storage, view, expected) in [
      ("out", outStorage, out, reference.out), ("lse", lseStorage, lse, reference.lse),
      ("dq", dQStorage, dQ, gradients.dQ), ("dk", dKStorage, dK, gradients.dK), ("dv", dVStorage, dV, gradients.dV),
    ] {
      expectMatchesReference(name, actual: view.gatherFloats(), expected: expected, "seed \(random.seed)")
      let written = Set(view.elementOffsets())
      let padding = (0..<storage.elementCount).filter { !written.contains($0) }
      #expect(!padding.isEmpty)
      #expect(padding.allSatisfy { storage.view.loadFloat(atElementOffset: $0).isNaN }, "\(name) wrote outside its view")
    }
  }

  /// `sum(out * dOut)` of the CPU forward, accumulated in Double.
  static func loss(
    _ engine: AttentionEngine, _ q: HostTensor, _ k: HostTensor, _ v: HostTensor, _ dOut: [Float],
    _ options: AttentionOptions
  ) throws -> Double {
    let out = try engine.forward(q: q, k: k, v: v, options: options).out.floats()
    return zip(out, dOut).reduce(0) { $0 + Double($1.0) * Double($1.1) }
  }

  @Test("CPU backward matches finite differences of the CPU forward (directional derivatives)")
  func finiteDifferences() throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 1, seqlenQ: 6, seqlenK: 9, headsQ: 4, headsKV: 2, headDim: 8, headDimV: 5)
    let options = AttentionOptions(causal: true, softcap: 2)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let dOutValues = random.normals(shape.oShape.reduce(1, *))
    let engine = try TestEngines.cpu()
    let (out, lse) = try engine.forward(q: q, k: k, v: v, options: options)
    let gradients = try engine.backward(
      q: q, k: k, v: v, out: out, lse: lse, dOut: HostTensor(dOutValues, shape: shape.oShape), options: options)
    let h: Float = 1e-2
    for (name, tensor, gradient) in [("q", q, gradients.dQ), ("k", k, gradients.dK), ("v", v, gradients.dV)] {
      let original = tensor.floats()
      let direction = random.normals(original.count)
      let analytic = zip(gradient.floats(), direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
      for index in original.indices { tensor.view.storeFloat(original[index] + h * direction[index], atElementOffset: index) }
      let plus = try Self.loss(engine, q, k, v, dOutValues, options)
      for index in original.indices { tensor.view.storeFloat(original[index] - h * direction[index], atElementOffset: index) }
      let minus = try Self.loss(engine, q, k, v, dOutValues, options)
      for index in original.indices { tensor.view.storeFloat(original[index], atElementOffset: index) }
      let numeric = (plus - minus) / (2 * Double(h))
      #expect(
        abs(numeric - analytic) <= 1e-2 * max(1, abs(analytic)),
        "d\(name) along a random direction: numeric \(numeric) vs analytic \(analytic), seed \(random.seed)")
    }
  }
}
