import FlashAttention
import FlashAttentionTestSupport
import Testing

/// The README's API examples, at small sizes on the CPU: they compile and they are right.
@Suite("README examples")
struct ReadmeExampleTests {
  @Test("host tensors: bf16, GQA, causal + window + softcap, forward and backward")
  func hostTensors() throws {
    var random = TestRandom()
    let (batch, seqlen, heads, kvHeads, headDim) = (2, 40, 8, 2, 64)
    let queries = random.normals(batch * seqlen * heads * headDim)
    let keys = random.normals(batch * seqlen * kvHeads * headDim)
    let values = random.normals(batch * seqlen * kvHeads * headDim)

    let engine = try AttentionEngine(backend: .cpu)
    let q = HostTensor(queries, shape: [batch, seqlen, heads, headDim], dtype: .bfloat16)
    let k = HostTensor(keys, shape: [batch, seqlen, kvHeads, headDim], dtype: .bfloat16)
    let v = HostTensor(values, shape: [batch, seqlen, kvHeads, headDim], dtype: .bfloat16)
    let options = AttentionOptions(causal: true, window: SlidingWindow(left: 16, right: nil), softcap: 30)
    let (out, lse) = try engine.forward(q: q, k: k, v: v, options: options)
    #expect(lse.shape == [batch, heads, seqlen] && lse.dtype == .float32)

    let outputGradient = random.normals(out.elementCount)
    let dOut = HostTensor(outputGradient, shape: out.shape, dtype: .bfloat16)
    let (dQ, dK, dV) = try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, options: options)
    #expect(dQ.shape == q.shape && dK.shape == k.shape && dV.shape == v.shape)

    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
    let baseline = try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: options)
    expectMatchesReference(
      "out", actual: out.floats(), expected: reference.out, baseline: baseline.out, dtype: .bfloat16,
      "seed \(random.seed)")
  }

  @Test("views into a packed QKV buffer [b, s, 3, h, d] give the results of separate tensors")
  func packedQKV() throws {
    var random = TestRandom()
    let (b, sq, hq, d) = (2, 23, 4, 32)
    let packed = random.tensor([b, sq, 3, hq, d])
    let strides = [sq * 3 * hq * d, 3 * hq * d, d, 1]
    func view(_ part: Int) -> TensorView {
      TensorView(
        baseAddress: packed.storage + part * hq * d * MemoryLayout<Float>.stride, dtype: .float32,
        shape: [b, sq, hq, d], strides: strides)
    }
    let (qView, kView, vView) = (view(0), view(1), view(2))
    let out = HostTensor(shape: [b, sq, hq, d], dtype: .float32)
    let lse = HostTensor(shape: [b, hq, sq], dtype: .float32)
    let options = AttentionOptions(causal: true)
    let engine = try AttentionEngine(backend: .cpu)
    try engine.forward(q: qView, k: kView, v: vView, out: out.view, lse: lse.view, options: options)

    let separate = try engine.forward(
      q: HostTensor(qView.gatherFloats(), shape: qView.shape), k: HostTensor(kView.gatherFloats(), shape: kView.shape),
      v: HostTensor(vView.gatherFloats(), shape: vView.shape), options: options)
    let difference = zip(out.floats(), separate.out.floats()).map { abs($0 - $1) }.max() ?? 0
    #expect(difference <= 1e-6, "seed \(random.seed)")
    let reference = try ReferenceAttention.forward(q: qView, k: kView, v: vView, options: options)
    expectMatchesReference("out", actual: out.floats(), expected: reference.out, "seed \(random.seed)")
  }
}
