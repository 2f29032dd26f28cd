import FlashAttention
import FlashAttentionTestSupport
import Testing

/// Split-KV on the CPU: a decode-shaped problem (one head, one query, thousands of keys) runs its
/// keys in chunks on every thread and merges them by their softmax statistics; the result must
/// match the float64 reference like the unsplit pass, masks and softcap included.
@Suite("Split-KV (key chunks merged by LSE)")
struct SplitKeyTests {
  @Test(
    "decode shapes match the reference with the automatic split and explicit num_splits",
    arguments: [
      (AttentionOptions(), 0), (AttentionOptions(causal: true), 0), (AttentionOptions(softcap: 20), 3),
      (AttentionOptions(window: SlidingWindow(left: 700, right: 0)), 7), (AttentionOptions(), 64),
    ])
  func decodeMatchesReference(options: AttentionOptions, numSplits: Int) throws {
    var random = TestRandom()
    let (keys, headsKV, dim) = (2_500, 1, 64)
    let kCache = random.tensor([1, keys, headsKV, dim])
    let vCache = random.tensor([1, keys, headsKV, dim])
    let q = random.tensor([1, 1, 1, dim])
    let out = HostTensor(shape: [1, 1, 1, dim], dtype: .float32)
    let lse = HostTensor(shape: [1, 1, 1], dtype: .float32)
    let cache = KVCache(k: kCache.view, v: vCache.view, seqlens: IndexTensorView([Int32(keys)]))
    let engine = try TestEngines.cpu()
    try engine.forward(q: q.view, cache: cache, out: out.view, lse: lse.view, options: options, numSplits: numSplits)
    let reference = try ReferenceAttention.forward(q: q.view, k: kCache.view, v: vCache.view, options: options)
    for (name, actual, expected) in [("out", out.floats(), reference.out), ("lse", lse.floats(), reference.lse)] {
      let metrics = ErrorMetrics(actual: actual, expected: expected)
      #expect(
        metrics.passes(tolerance: VerificationRule.float32Tolerance),
        "\(name): \(metrics), num_splits \(numSplits), \(options), seed \(random.seed)")
    }
  }

  @Test("a NaN key reaches the output through the merge; chunks without keys add nothing")
  func nanPropagatesThroughTheMerge() throws {
    var random = TestRandom()
    let (keys, dim) = (1_000, 32)
    let k = random.tensor([1, keys, 1, dim])
    let v = random.tensor([1, keys, 1, dim])
    k.view.storeFloat(.nan, atElementOffset: 900 * dim + 3)
    let cache = KVCache(k: k.view, v: v.view, seqlens: IndexTensorView([Int32(keys)]))
    let q = random.tensor([1, 2, 1, dim])
    let out = HostTensor(shape: [1, 2, 1, dim], dtype: .float32)
    let lse = HostTensor(shape: [1, 1, 2], dtype: .float32)
    // Query 0 sees keys ..< 999 (causal, bottom-right), query 1 all: both see key 900.
    try TestEngines.cpu().forward(
      q: q.view, cache: cache, out: out.view, lse: lse.view, options: AttentionOptions(causal: true), numSplits: 5)
    #expect(lse.floats().allSatisfy { $0.isNaN })
    #expect(out.floats().allSatisfy { $0.isNaN })
  }
}
