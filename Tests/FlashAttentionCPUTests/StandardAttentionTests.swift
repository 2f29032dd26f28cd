import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@Suite("Standard (materializing) attention")
struct StandardAttentionTests {
  @Test("matches the float64 reference", arguments: [
    AttentionCase(seqlenQ: 7, seqlenK: 17, headDim: 7, headDimV: 9),
    AttentionCase(batch: 2, seqlenQ: 129, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 64),
    AttentionCase(seqlenQ: 200, seqlenK: 130, headDim: 33, options: AttentionOptions(causal: true)),
    AttentionCase(
      seqlenQ: 257, seqlenK: 257, headsQ: 2, headsKV: 1, headDim: 40, headDimV: 24,
      options: AttentionOptions(window: SlidingWindow(left: 20, right: 5))),
  ])
  func matchesReference(_ c: AttentionCase) throws {
    try expectMatchesReference(c, backend: StandardAttention(threads: 2))
  }

  @Test("refuses a problem larger than memory with outOfMemory, before allocating")
  func outOfMemory() throws {
    // One head of d = 1 and 2^20 tokens: 4 MiB inputs, but S alone would need 4 TiB.
    let n = 1 << 20
    let shape = AttentionShape(batch: 1, seqlenQ: n, headsQ: 1, headDim: 1)
    let standard = try StandardAttention(threads: 1)
    #expect(standard.requiredBytes(for: shape) >= 4 * n * n)
    let q = HostTensor(shape: shape.qShape, dtype: .float32)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let arguments = try ForwardArguments(q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, options: AttentionOptions())
    #expect {
      try standard.forward(arguments)
    } throws: { error in
      if case .outOfMemory = error as? FlashAttentionError { return true }
      return false
    }
  }
}
