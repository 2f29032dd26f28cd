/// One KV-cache problem of the verification matrix (`flash_attn_with_kvcache`): per-sequence
/// cache lengths, new tokens appended in place, query tokens, heads, the cache's layout
/// (contiguous, optionally through `cache_batch_idx`, or paged with any page size), options and
/// the split count. Every slot past a sequence's keys and every page no sequence uses holds NaN.
package struct KVCacheCase: Sendable, Hashable, CustomStringConvertible {
  package var name: String
  /// Tokens already cached per sequence (the batch is its count).
  package var cached: [Int]
  package var newTokens: Int
  package var queries: Int
  package var headsQ: Int
  package var headsKV: Int
  package var headDim: Int
  package var headDimV: Int
  /// Paged with this page size, or contiguous (nil).
  package var pageSize: Int?
  /// Contiguous caches: sequence b lives in cache row `batch - 1 - b` of `batch + 1` rows.
  package var batchIndex: Bool
  package var options: AttentionOptions
  /// 0 chooses automatically.
  package var numSplits: Int

  package init(
    _ name: String, cached: [Int], newTokens: Int = 0, queries: Int = 1, headsQ: Int = 8, headsKV: Int = 2,
    headDim: Int = 64, headDimV: Int? = nil, pageSize: Int? = nil, batchIndex: Bool = false,
    options: AttentionOptions = AttentionOptions(), numSplits: Int = 0
  ) {
    self.name = name
    self.cached = cached
    self.newTokens = newTokens
    self.queries = queries
    self.headsQ = headsQ
    self.headsKV = headsKV
    self.headDim = headDim
    self.headDimV = headDimV ?? headDim
    self.pageSize = pageSize
    self.batchIndex = batchIndex
    self.options = options
    self.numSplits = numSplits
  }

  package var batch: Int { cached.count }
  /// Slots per sequence: the longest sequence after the append, plus a few never used.
  package var capacity: Int { (cached.max() ?? 0) + newTokens + 5 }

  /// The shape for tables: `seqlenK` is the capacity.
  package var shape: AttentionShape {
    AttentionShape(
      batch: batch, seqlenQ: queries, seqlenK: capacity, headsQ: headsQ, headsKV: headsKV, headDim: headDim,
      headDimV: headDimV)
  }

  /// The layout and options in words.
  package var layoutDescription: String {
    var parts = [pageSize.map { "page=\($0)" } ?? (batchIndex ? "batch_idx" : "contiguous")]
    if newTokens > 0 { parts.append("new=\(newTokens)") }
    parts.append("splits=\(numSplits == 0 ? "auto" : String(numSplits))")
    return parts.joined(separator: " ")
  }

  /// As an `AttentionProblem` for the result table (forward only).
  package var problem: AttentionProblem {
    AttentionProblem(name, shape, options, backward: false)
  }

  package var description: String { "\(name) cached \(cached) [\(shape)] \(layoutDescription)" }
}

/// The KV-cache cases of `verify` (names start with "kv-"): contiguous and paged caches (page
/// sizes 1, 3, 16, 256), appends, cache_batch_idx, several query tokens (the swapped 8-row tile,
/// one and two m16 tiles of packed rows), causal and windows aligned to each sequence's end, GQA and MQA, softcap, empty
/// sequences, split counts 1, automatic and larger than the key tiles.
package enum KVCacheMatrix {
  package static let standard: [KVCacheCase] = {
    typealias O = AttentionOptions
    return [
      KVCacheCase("kv-contig-append", cached: [5, 17, 0], newTokens: 1, options: O(causal: true)),
      KVCacheCase("kv-contig-q3-empty", cached: [5, 17, 1], queries: 3, options: O(causal: true)),
      KVCacheCase("kv-page1-append", cached: [7, 12], newTokens: 4, queries: 4, pageSize: 1, options: O(causal: true)),
      KVCacheCase("kv-page3", cached: [7, 30, 2], newTokens: 2, queries: 2, pageSize: 3),
      KVCacheCase(
        "kv-page16-softcap", cached: [33, 0], newTokens: 7, queries: 7, pageSize: 16,
        options: O(causal: true, softcap: 15)),
      KVCacheCase(
        "kv-page256-gqa4", cached: [1000, 300], newTokens: 1, headsQ: 32, headsKV: 8, headDim: 128, pageSize: 256),
      KVCacheCase(
        "kv-batchidx-window", cached: [9, 3], newTokens: 1, batchIndex: true,
        options: O(window: SlidingWindow(left: 4, right: 0))),
      KVCacheCase("kv-gqa4-split1", cached: [1500], headsQ: 32, headsKV: 8, headDim: 128, numSplits: 1),
      KVCacheCase("kv-gqa4-auto", cached: [2500, 3], headsQ: 32, headsKV: 8, headDim: 128, pageSize: 16),
      KVCacheCase("kv-split-large", cached: [100, 50, 0], headsKV: 1, numSplits: 200),
      KVCacheCase(
        "kv-window-split", cached: [2000], newTokens: 2, queries: 2, headsQ: 32, headsKV: 8, headDim: 128,
        pageSize: 64, options: O(causal: true, window: SlidingWindow(left: 64, right: nil)), numSplits: 7),
      KVCacheCase("kv-d40-mqa3", cached: [17, 129], headsQ: 3, headsKV: 1, headDim: 40, pageSize: 3),
      // Four packed rows (the swapped 8-row tile) with softcap, a mask and pages of 16.
      KVCacheCase(
        "kv-gqa4-softcap", cached: [300, 45], newTokens: 1, pageSize: 16, options: O(causal: true, softcap: 20)),
      KVCacheCase(
        "kv-spec8-rows32", cached: [500, 1000], newTokens: 8, queries: 8, headsQ: 32, headsKV: 8, headDim: 128,
        pageSize: 16, options: O(causal: true)),
      KVCacheCase(
        "kv-d192-dv128", cached: [77], newTokens: 3, queries: 3, headsQ: 4, headsKV: 2, headDim: 192, headDimV: 128,
        options: O(causal: true)),
    ]
  }()
}

extension Verification {
  /// Runs one KV-cache case: the cache filled with NaN, the cached tokens and new ones random,
  /// the call, then O and the LSE against the float64 reference on each sequence's keys (the
  /// cached ones then the new ones), and the appended tokens read back from the cache (exact).
  /// Never throws: a backend error becomes the result's `error`.
  package func run(_ testCase: KVCacheCase, dtype: DType, seed: UInt64 = UInt64.random(in: 1...UInt64.max))
    -> VerificationResult
  {
    var random = VerificationRandom(seed: seed)
    let (batch, hkv, d, dv) = (testCase.batch, testCase.headsKV, testCase.headDim, testCase.headDimV)
    let capacity = testCase.capacity
    let pageSize = testCase.pageSize ?? capacity
    let pagesPerSequence = (capacity + pageSize - 1) / pageSize
    let rows = testCase.batchIndex ? batch + 1 : batch
    // Paged: every sequence's pages shuffled among twice as many (half never referenced).
    let blocks = testCase.pageSize == nil ? rows : 2 * batch * pagesPerSequence + 1
    var pageOrder = Array(0..<blocks)
    pageOrder.shuffle(using: &random)
    func place(_ b: Int, _ token: Int) -> Int {  // the (block, row) of a token as a row index
      if testCase.pageSize == nil { return (testCase.batchIndex ? batch - 1 - b : b) * capacity + token }
      return pageOrder[b * pagesPerSequence + token / pageSize] * pageSize + token % pageSize
    }
    var checks: [VerificationCheck] = []
    var forwardSeconds: Double?
    func result(_ error: String?) -> VerificationResult {
      VerificationResult(
        problem: testCase.problem, dtype: dtype, backend: engine.backend.name, seed: seed, checks: checks,
        error: error, forwardSeconds: forwardSeconds, backwardSeconds: nil)
    }
    do {
      let kCache = try HostTensor(shape: [blocks, pageSize, hkv, d], dtype: dtype, name: "k_cache")  // NaN
      let vCache = try HostTensor(shape: [blocks, pageSize, hkv, dv], dtype: dtype, name: "v_cache")
      for b in 0..<batch {
        for t in 0..<testCase.cached[b] {
          for c in 0..<(hkv * d) { kCache.view.storeFloat(random.normal(), atElementOffset: place(b, t) * hkv * d + c) }
          for c in 0..<(hkv * dv) { vCache.view.storeFloat(random.normal(), atElementOffset: place(b, t) * hkv * dv + c) }
        }
      }
      let kNew = random.tensor([batch, testCase.newTokens, hkv, d], dtype: dtype)
      let vNew = random.tensor([batch, testCase.newTokens, hkv, dv], dtype: dtype)
      let q = random.tensor([batch, testCase.queries, testCase.headsQ, d], dtype: dtype)
      // Table entries past a sequence's last page are garbage: they must never be read.
      var table = [Int32](repeating: -7, count: batch * pagesPerSequence)
      for b in 0..<batch {
        let used = (testCase.cached[b] + testCase.newTokens + pageSize - 1) / pageSize
        for p in 0..<used { table[b * pagesPerSequence + p] = Int32(pageOrder[b * pagesPerSequence + p]) }
      }
      // The reference keys of each sequence, taken before the call: cached, then new.
      var sequenceKeys: [(HostTensor, HostTensor)] = []
      for b in 0..<batch {
        let keys = testCase.cached[b] + testCase.newTokens
        let k = HostTensor(shape: [1, keys, hkv, d], dtype: dtype)
        let v = HostTensor(shape: [1, keys, hkv, dv], dtype: dtype)
        for t in 0..<keys {
          let isNew = t >= testCase.cached[b]
          for c in 0..<(hkv * d) {
            let value =
              isNew
              ? kNew.view.loadFloat(atElementOffset: ((b * testCase.newTokens + t - testCase.cached[b]) * hkv * d) + c)
              : kCache.view.loadFloat(atElementOffset: place(b, t) * hkv * d + c)
            k.view.storeFloat(value, atElementOffset: t * hkv * d + c)
          }
          for c in 0..<(hkv * dv) {
            let value =
              isNew
              ? vNew.view.loadFloat(atElementOffset: ((b * testCase.newTokens + t - testCase.cached[b]) * hkv * dv) + c)
              : vCache.view.loadFloat(atElementOffset: place(b, t) * hkv * dv + c)
            v.view.storeFloat(value, atElementOffset: t * hkv * dv + c)
          }
        }
        sequenceKeys.append((k, v))
      }
      var cache = KVCache(
        k: kCache.view, v: vCache.view, seqlens: IndexTensorView(testCase.cached.map { Int32($0) }),
        batchIndex: testCase.batchIndex ? IndexTensorView((0..<batch).map { Int32(batch - 1 - $0) }) : nil)
      if testCase.pageSize != nil { cache.pageTable = IndexTensorView(table, rows: batch, columns: pagesPerSequence) }
      let out = HostTensor(shape: [batch, testCase.queries, testCase.headsQ, dv], dtype: dtype)
      let lse = HostTensor(shape: [batch, testCase.headsQ, testCase.queries], dtype: .float32)
      let start = ContinuousClock.now
      try engine.forward(
        q: q.view, cache: cache, kNew: testCase.newTokens > 0 ? kNew.view : nil,
        vNew: testCase.newTokens > 0 ? vNew.view : nil, out: out.view, lse: lse.view, options: testCase.options,
        numSplits: testCase.numSplits)
      let elapsed = (ContinuousClock.now - start).components
      forwardSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18

      var expectedOut: [Double] = []
      var expectedLSE: [Double] = []
      var baselineOut: [Double] = []
      let qValues = q.floats()
      let qPerSequence = testCase.queries * testCase.headsQ * d
      for b in 0..<batch {
        let qb = HostTensor(
          Array(qValues[(b * qPerSequence)..<((b + 1) * qPerSequence)]), shape: [1, testCase.queries, testCase.headsQ, d],
          dtype: dtype)
        let (k, v) = sequenceKeys[b]
        let reference = try ReferenceAttention.forward(q: qb.view, k: k.view, v: v.view, options: testCase.options)
        expectedOut += reference.out
        expectedLSE += reference.lse
        if dtype != .float32 {
          baselineOut += try ReferenceAttention.samePrecisionForward(
            q: qb.view, k: k.view, v: v.view, options: testCase.options
          ).out
        }
      }
      checks.append(VerificationCheck("out", actual: out.floats(), expected: expectedOut, baseline: dtype == .float32 ? nil : baselineOut, dtype: dtype))
      checks.append(VerificationCheck("lse", actual: lse.floats(), expected: expectedLSE, baseline: nil, dtype: .float32))
      if testCase.newTokens > 0 {
        // The appended tokens, read back where the next call will find them: exact copies.
        var stored: [Float] = []
        var appended: [Double] = []
        for b in 0..<batch {
          let (k, v) = sequenceKeys[b]
          for t in testCase.cached[b]..<(testCase.cached[b] + testCase.newTokens) {
            for c in 0..<(hkv * d) {
              stored.append(kCache.view.loadFloat(atElementOffset: place(b, t) * hkv * d + c))
              appended.append(Double(k.view.loadFloat(atElementOffset: t * hkv * d + c)))
            }
            for c in 0..<(hkv * dv) {
              stored.append(vCache.view.loadFloat(atElementOffset: place(b, t) * hkv * dv + c))
              appended.append(Double(v.view.loadFloat(atElementOffset: t * hkv * dv + c)))
            }
          }
        }
        checks.append(
          VerificationCheck(
            name: "cache", metrics: ErrorMetrics(actual: stored, expected: appended), baselineError: nil, tolerance: 0))
      }
      return result(nil)
    } catch {
      return result(error.description)
    }
  }
}
