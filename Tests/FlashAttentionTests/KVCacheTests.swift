import FlashAttention
import FlashAttentionTestSupport
import Testing

/// KV-cache inference on the CPU: contiguous and paged caches (page sizes 1, 3, 16), new tokens
/// appended in place, cache_batch_idx, several query tokens, and NaN in every slot and page the
/// call must not read.
@Suite("KV cache (flash_attn_with_kvcache)")
struct KVCacheTests {
  struct Case: CustomStringConvertible, Sendable {
    var cached: [Int]
    var newTokens = 0
    var queries = 1
    var pageSize: Int? = nil
    var capacity = 40
    var batchIndex: [Int]? = nil
    var headsQ = 8
    var headsKV = 2
    var dim = 32
    var options = AttentionOptions(causal: true)

    var description: String {
      "cached \(cached) new \(newTokens) queries \(queries) page \(pageSize.map(String.init) ?? "-") "
        + "batch_idx \(batchIndex ?? []) causal \(options.causal) window \(options.window?.description ?? "-")"
    }
  }

  static let cases: [Case] = [
    Case(cached: [5, 17, 0], newTokens: 1),
    Case(cached: [5, 17, 1], newTokens: 0, queries: 3),
    Case(cached: [7, 12], newTokens: 4, queries: 4, pageSize: 1),
    Case(cached: [7, 30, 2], newTokens: 2, queries: 2, pageSize: 3, options: AttentionOptions()),
    Case(cached: [33, 0], newTokens: 7, queries: 7, pageSize: 16, options: AttentionOptions(causal: true, softcap: 15)),
    Case(
      cached: [9, 3], newTokens: 1, queries: 1, batchIndex: [2, 0],
      options: AttentionOptions(window: SlidingWindow(left: 4, right: 0))),
  ]

  @Test("matches the float64 reference on the appended cache; unused slots and pages are never read", arguments: cases)
  func matchesReference(testCase: Case) throws {
    var random = TestRandom()
    let batch = testCase.cached.count
    let (hkv, d) = (testCase.headsKV, testCase.dim)
    // The cache: contiguous rows (one per cache_batch_idx slot) or shuffled pages.
    let rows = testCase.batchIndex.map { $0.max()! + 1 } ?? batch
    let pageSize = testCase.pageSize ?? testCase.capacity
    let pagesPerSequence = (testCase.capacity + pageSize - 1) / pageSize
    let blockCount = testCase.pageSize == nil ? rows : batch * pagesPerSequence + 3
    let kCache = HostTensor(shape: [blockCount, pageSize, hkv, d], dtype: .float32)  // NaN everywhere
    let vCache = HostTensor(shape: [blockCount, pageSize, hkv, d], dtype: .float32)
    var pageOrder = Array(0..<blockCount)
    pageOrder.shuffle(using: &random)
    var table = [Int32](repeating: -7, count: batch * pagesPerSequence)  // garbage past the used pages
    func slot(_ b: Int, _ token: Int) -> Int {  // the cache row index of token `token` of sequence b
      if testCase.pageSize == nil { return (testCase.batchIndex?[b] ?? b) * pageSize + token }
      return pageOrder[b * pagesPerSequence + token / pageSize] * pageSize + token % pageSize
    }
    // The reference keys: what the cache holds before the call, then the new tokens.
    var keysPerSequence: [[Float]] = []
    var valuesPerSequence: [[Float]] = []
    let kNew = random.tensor([batch, testCase.newTokens, hkv, d])
    let vNew = random.tensor([batch, testCase.newTokens, hkv, d])
    for b in 0..<batch {
      let total = testCase.cached[b] + testCase.newTokens
      if testCase.pageSize != nil {
        for p in 0..<((total + pageSize - 1) / pageSize) { table[b * pagesPerSequence + p] = Int32(pageOrder[b * pagesPerSequence + p]) }
      }
      let old = random.normals(testCase.cached[b] * hkv * d)
      let oldValues = random.normals(testCase.cached[b] * hkv * d)
      for t in 0..<testCase.cached[b] {
        for c in 0..<(hkv * d) {
          kCache.view.storeFloat(old[t * hkv * d + c], atElementOffset: slot(b, t) * hkv * d + c)
          vCache.view.storeFloat(oldValues[t * hkv * d + c], atElementOffset: slot(b, t) * hkv * d + c)
        }
      }
      let newK = Array(kNew.floats()[(b * testCase.newTokens * hkv * d)..<((b + 1) * testCase.newTokens * hkv * d)])
      let newV = Array(vNew.floats()[(b * testCase.newTokens * hkv * d)..<((b + 1) * testCase.newTokens * hkv * d)])
      keysPerSequence.append(old + newK)
      valuesPerSequence.append(oldValues + newV)
    }
    var cache = KVCache(
      k: kCache.view, v: vCache.view, seqlens: IndexTensorView(testCase.cached.map(Int32.init)),
      batchIndex: testCase.batchIndex.map { IndexTensorView($0.map(Int32.init)) })
    if testCase.pageSize != nil {
      cache.pageTable = IndexTensorView(table, rows: batch, columns: pagesPerSequence)
    }
    let q = random.tensor([batch, testCase.queries, testCase.headsQ, d])
    let out = HostTensor(shape: [batch, testCase.queries, testCase.headsQ, d], dtype: .float32)
    let lse = HostTensor(shape: [batch, testCase.headsQ, testCase.queries], dtype: .float32)
    let engine = try TestEngines.cpu()
    try engine.forward(
      q: q.view, cache: cache, kNew: testCase.newTokens > 0 ? kNew.view : nil,
      vNew: testCase.newTokens > 0 ? vNew.view : nil, out: out.view, lse: lse.view, options: testCase.options)

    let outValues = out.floats()
    let lseValues = lse.floats()
    for b in 0..<batch {
      let keys = testCase.cached[b] + testCase.newTokens
      let k = HostTensor(keysPerSequence[b], shape: [1, keys, hkv, d])
      let v = HostTensor(valuesPerSequence[b], shape: [1, keys, hkv, d])
      let qb = HostTensor(
        Array(q.floats()[(b * testCase.queries * testCase.headsQ * d)..<((b + 1) * testCase.queries * testCase.headsQ * d)]),
        shape: [1, testCase.queries, testCase.headsQ, d])
      let reference = try ReferenceAttention.forward(q: qb.view, k: k.view, v: v.view, options: testCase.options)
      let outSlice = Array(outValues[(b * reference.out.count)..<((b + 1) * reference.out.count)])
      let lseSlice = Array(lseValues[(b * reference.lse.count)..<((b + 1) * reference.lse.count)])
      for (name, actual, expected) in [("out", outSlice, reference.out), ("lse", lseSlice, reference.lse)] {
        let metrics = ErrorMetrics(actual: actual, expected: expected)
        #expect(metrics.passes(tolerance: VerificationRule.float32Tolerance), "\(name) of sequence \(b): \(metrics) for \(testCase), seed \(random.seed)")
      }
      // The new tokens landed in the cache, where the next call will find them.
      for t in 0..<testCase.newTokens {
        for c in 0..<(hkv * d) {
          let stored = kCache.view.loadFloat(atElementOffset: slot(b, testCase.cached[b] + t) * hkv * d + c)
          #expect(stored == keysPerSequence[b][(testCase.cached[b] + t) * hkv * d + c])
        }
      }
    }
  }

  @Test("bad cache arguments are typed errors naming them")
  func badArguments() throws {
    let engine = try TestEngines.cpu()
    let q = HostTensor(shape: [2, 1, 4, 16], dtype: .float32)
    let cacheK = HostTensor(shape: [4, 8, 2, 16], dtype: .float32)
    let out = HostTensor(shape: [2, 1, 4, 16], dtype: .float32)
    let lse = HostTensor(shape: [2, 4, 1], dtype: .float32)
    let kNew = HostTensor(shape: [2, 2, 2, 16], dtype: .float32)
    func expectError(_ cache: KVCache, new: Bool = false, names expected: String) {
      do {
        try engine.forward(
          q: q.view, cache: cache, kNew: new ? kNew.view : nil, vNew: new ? kNew.view : nil, out: out.view,
          lse: lse.view)
        Issue.record("no error for \(expected)")
      } catch let .invalidArgument(name, _, _) {
        #expect(name == expected)
      } catch {
        Issue.record("unexpected \(error)")
      }
    }
    expectError(KVCache(k: cacheK.view, v: cacheK.view, seqlens: IndexTensorView([3, -1])), names: "cache_seqlens[1]")
    expectError(KVCache(k: cacheK.view, v: cacheK.view, seqlens: IndexTensorView([7, 2])), new: true, names: "cache_seqlens[0]")
    expectError(
      KVCache(k: cacheK.view, v: cacheK.view, seqlens: IndexTensorView([1, 2]), batchIndex: IndexTensorView([0, 4])),
      names: "cache_batch_idx[1]")
    expectError(
      KVCache(
        k: cacheK.view, v: cacheK.view, seqlens: IndexTensorView([9, 2]),
        pageTable: IndexTensorView([0, 9, 1, 2], rows: 2, columns: 2)),
      names: "page_table[0, 1]")
    expectError(KVCache(k: cacheK.view, v: cacheK.view, seqlens: IndexTensorView([1])), names: "cache_seqlens.shape[0]")
  }
}
