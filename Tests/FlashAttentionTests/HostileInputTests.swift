import FlashAttention
import FlashAttentionTestSupport
import Testing

/// The issue-16 inputs through the public Swift API: the same typed errors (or exact results) as
/// the command line gives, since the C interface and Python reach the same engine.
@Suite("Hostile inputs through the engine: huge outputs, empty problems, huge window bounds")
struct HostileInputTests {
  @Test("a small input whose output no memory holds is a typed out-of-memory error")
  func hugeOutput() throws {
    // 32 MB of q and 40 MB of v ask for a 40 TB output ([1, 10^6, 1, 10^7] float32).
    let q = HostTensor(shape: [1, 1_000_000, 1, 8], dtype: .float32)
    let k = HostTensor(shape: [1, 1, 1, 8], dtype: .float32)
    let v = HostTensor(shape: [1, 1, 1, 10_000_000], dtype: .float32)
    let engine = try TestEngines.cpu()
    #expect {
      _ = try engine.forward(q: q, k: k, v: v)
    } throws: { error in
      guard case let .outOfMemory(bytes, context) = error as? FlashAttentionError else { return false }
      return bytes == 40_000_000_000_000 && context.hasPrefix("out")
    }
  }

  @Test("a backward with no queries and 2^40 heads returns at once with dK = dV = 0")
  func emptyQueriesManyHeads() throws {
    var random = TestRandom()
    let heads = 1 << 40
    let q = HostTensor(shape: [1, 0, heads, 16], dtype: .float32)
    let k = random.tensor([1, 3, 1, 16])
    let v = random.tensor([1, 3, 1, 16])
    let engine = try TestEngines.cpu()
    let (out, lse) = try engine.forward(q: q, k: k, v: v)
    #expect(out.shape == [1, 0, heads, 16] && lse.shape == [1, heads, 0])
    let start = ContinuousClock.now
    let gradients = try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: out)
    #expect(ContinuousClock.now - start < .seconds(1))
    #expect(gradients.dQ.elementCount == 0)
    #expect(gradients.dK.floats() == [Float](repeating: 0, count: 48))
    #expect(gradients.dV.floats() == [Float](repeating: 0, count: 48))
  }

  @Test("no keys through strided host views: outputs 0, LSE -inf, padding untouched")
  func emptyKeysStrided() throws {
    var random = TestRandom()
    let q = random.tensor([2, 3, 2, 4])
    let k = HostTensor(shape: [2, 0, 1, 4], dtype: .float32)
    let v = HostTensor(shape: [2, 0, 1, 6], dtype: .float32)
    let outStorage = HostTensor(shape: [2, 3, 2, 9], dtype: .float32)
    let out = TensorView(
      baseAddress: outStorage.storage, dtype: .float32, shape: [2, 3, 2, 6], strides: [54, 18, 9, 1])
    let lse = HostTensor(shape: [2, 2, 3], dtype: .float32)
    try TestEngines.cpu().forward(q: q.view, k: k.view, v: v.view, out: out, lse: lse.view)
    #expect(out.gatherFloats().allSatisfy { $0 == 0 })
    #expect(lse.floats().allSatisfy { $0 == -.infinity })
    let padding = outStorage.floats().enumerated().filter { $0.offset % 9 >= 6 }.map(\.element)
    #expect(padding.count == 36 && padding.allSatisfy(\.isNaN))
  }

  @Test(
    "window bounds up to Int.max give the unbounded results, forward and backward",
    arguments: [(seqlenQ: 9, seqlenK: 5), (seqlenQ: 5, seqlenK: 9)])
  func hugeWindowBounds(seqlenQ: Int, seqlenK: Int) throws {
    var random = TestRandom()
    let shape = AttentionShape(batch: 1, seqlenQ: seqlenQ, seqlenK: seqlenK, headsQ: 2, headDim: 8)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let dOut = random.tensor(shape.oShape)
    let engine = try TestEngines.cpu()
    for causal in [false, true] {
      let plain = AttentionOptions(causal: causal)
      let expected = try engine.forward(q: q, k: k, v: v, options: plain)
      let expectedGradients = try engine.backward(
        q: q, k: k, v: v, out: expected.out, lse: expected.lse, dOut: dOut, options: plain)
      for bound in [Int.max, Int.max - 1] {
        let options = AttentionOptions(causal: causal, window: SlidingWindow(left: bound, right: bound))
        let (out, lse) = try engine.forward(q: q, k: k, v: v, options: options)
        let gradients = try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, options: options)
        #expect(out.floats() == expected.out.floats(), "causal \(causal), bound \(bound), seed \(random.seed)")
        #expect(lse.floats() == expected.lse.floats())
        #expect(gradients.dQ.floats() == expectedGradients.dQ.floats())
        #expect(gradients.dK.floats() == expectedGradients.dK.floats())
      }
    }
  }
}
