/// A key/value cache for inference (FlashAttention's `flash_attn_with_kvcache`): contiguous
/// `(batch_cache, seqlen_cache, heads_kv, head_dim)` or, with a page table, paged `(num_pages,
/// page_size, heads_kv, head_dim)` with any `page_size >= 1`. Sequence `b` holds
/// `seqlens[b]` tokens; slots past that (and pages its table does not reach) are never read.
public struct KVCache: Sendable {
  public var k: TensorView
  /// Like `k`, with `head_dim_v` columns.
  public var v: TensorView
  /// int32 `(batch)`: tokens already in each sequence's cache.
  public var seqlens: IndexTensorView
  /// Optional int32 `(batch)`: the cache row of each sequence (contiguous caches only);
  /// `nil` means sequence `b` uses row `b`.
  public var batchIndex: IndexTensorView?
  /// Optional int32 `(batch, max_pages_per_sequence)`: page `p` of sequence `b` is
  /// `pageTable[b, p]`; makes the cache paged.
  public var pageTable: IndexTensorView?

  public init(
    k: TensorView, v: TensorView, seqlens: IndexTensorView, batchIndex: IndexTensorView? = nil,
    pageTable: IndexTensorView? = nil
  ) {
    self.k = k
    self.v = v
    self.seqlens = seqlens
    self.batchIndex = batchIndex
    self.pageTable = pageTable
  }

  public var isPaged: Bool { pageTable != nil }
  /// Tokens per page (paged), or the cache's sequence capacity (contiguous).
  public var rowsPerBlock: Int { k.shape[1] }
}

/// Where sequence `b`'s keys are, once checked (host index data).
public struct CacheSequence: Sendable, Hashable {
  /// Tokens in the cache before this call's new keys.
  public var cachedTokens: Int
  /// Keys attention sees: `cachedTokens` plus the new tokens.
  public var keyCount: Int
  /// Contiguous caches: the cache row. Paged: unused (-1).
  public var cacheRow: Int
  /// Paged caches: the pages holding the keys, in order. Contiguous: empty.
  public var pages: [Int]
}

/// A validated KV-cache forward: q `(batch, seqlen_q, heads_q, head_dim)` (several query tokens per
/// sequence for speculative decoding), the cache, optional new keys and values `(batch,
/// seqlen_new, heads_kv, head_dim / head_dim_v)` written into the cache at `seqlens[b]` before the
/// attention (which then sees `seqlens[b] + seqlen_new` keys), out `(batch, seqlen_q, heads_q,
/// head_dim_v)`, lse float32 `(batch, heads_q, seqlen_q)`. Causal and window masks align to the
/// end of each sequence's keys. Forward only.
public struct KVCacheForwardArguments: Sendable {
  public let q: TensorView
  public let cache: KVCache
  public let kNew: TensorView?
  public let vNew: TensorView?
  public let out: TensorView
  public let lse: TensorView
  public let options: AttentionOptions
  public let scale: Float
  /// Key chunks per sequence computed apart and merged by their LSEs; 0 lets the backend choose.
  public let numSplits: Int
  /// `batch` sequences, `seqlenQ` queries, `seqlenK` = the cache's capacity per sequence.
  public let shape: AttentionShape
  /// The checked key ranges of each sequence when the index data lives on the host.
  public let sequences: [CacheSequence]?

  public init(
    q: TensorView, cache: KVCache, kNew: TensorView? = nil, vNew: TensorView? = nil, out: TensorView,
    lse: TensorView, options: AttentionOptions, numSplits: Int = 0
  ) throws(FlashAttentionError) {
    try TensorChecks.refuseFloat8(q, "the KV cache")
    try TensorChecks.rank4(q, "q")
    try TensorChecks.rank4(cache.k, "k_cache")
    try TensorChecks.rank4(cache.v, "v_cache")
    let batch = q.shape[0]
    for (tensor, name) in [(cache.k, "k_cache"), (cache.v, "v_cache")] {
      if tensor.dtype != q.dtype {
        throw .invalidArgument(name: "\(name).dtype", value: "\(tensor.dtype)", reason: "must match q.dtype (\(q.dtype))")
      }
      if tensor.location != q.location {
        throw .invalidArgument(name: "\(name).location", value: "\(tensor.location)", reason: "must match q's (\(q.location))")
      }
    }
    if cache.v.shape[0] != cache.k.shape[0] || cache.v.shape[1] != cache.k.shape[1] || cache.v.shape[2] != cache.k.shape[2] {
      throw .invalidArgument(
        name: "v_cache.shape", value: "\(cache.v.shape)", reason: "must match k_cache.shape \(cache.k.shape) but for head_dim_v")
    }
    if cache.k.shape[3] != q.shape[3] {
      throw .invalidArgument(
        name: "k_cache.shape[3]", value: "\(cache.k.shape[3])", reason: "head_dim must match q.shape[3] (\(q.shape[3]))")
    }
    if numSplits < 0 {
      throw .invalidArgument(name: "num_splits", value: "\(numSplits)", reason: "must be >= 0 (0 chooses automatically)")
    }
    let headsKV = cache.k.shape[2]
    var seqlenNew = 0
    switch (kNew, vNew) {
    case (nil, nil): break
    case let (kNew?, vNew?):
      try TensorChecks.rank4(kNew, "k")
      try TensorChecks.rank4(vNew, "v")
      seqlenNew = kNew.shape[1]
      try TensorChecks.expect(kNew, "k", shape: [batch, seqlenNew, headsKV, q.shape[3]], dtype: q.dtype, location: q.location)
      try TensorChecks.expect(vNew, "v", shape: [batch, seqlenNew, headsKV, cache.v.shape[3]], dtype: q.dtype, location: q.location)
    default:
      throw .invalidArgument(name: kNew == nil ? "k" : "v", value: "nil", reason: "new keys and values come together")
    }
    try KVCacheChecks.indexes(cache, batch: batch, location: q.location)
    let capacity =
      if let table = cache.pageTable { table.shape[1] * cache.k.shape[1] } else { cache.k.shape[1] }
    let shape = AttentionShape(
      batch: batch, seqlenQ: q.shape[1], seqlenK: capacity, headsQ: q.shape[2], headsKV: headsKV,
      headDim: q.shape[3], headDimV: cache.v.shape[3])
    try shape.validate()
    try options.validate(batch: batch, headsQ: shape.headsQ)
    if options.activeDropout != nil {
      throw .invalidArgument(
        name: "dropout_p", value: "\(options.dropout?.probability ?? 0)", reason: "the KV-cache forward is inference: dropout must be 0")
    }
    try TensorChecks.expect(out, "out", shape: shape.oShape, dtype: q.dtype, location: q.location)
    try TensorChecks.expect(lse, "lse", shape: shape.lseShape, dtype: .float32, location: q.location)
    self.q = q
    self.cache = cache
    self.kNew = kNew
    self.vNew = vNew
    self.out = out
    self.lse = lse
    self.options = options
    self.scale = options.resolvedScale(headDim: shape.headDim)
    self.numSplits = numSplits
    self.shape = shape
    sequences =
      q.location == .host
      ? try KVCacheChecks.sequences(cache, batch: batch, newTokens: seqlenNew, capacity: capacity) : nil
  }

  /// Tokens appended per sequence by this call.
  public var seqlenNew: Int { kNew?.shape[1] ?? 0 }
}

enum KVCacheChecks {
  static func indexes(_ cache: KVCache, batch: Int, location: MemoryLocation) throws(FlashAttentionError) {
    try VarlenChecks.index(cache.seqlens, "cache_seqlens", location: location)
    if cache.seqlens.shape[0] != batch {
      throw .invalidArgument(name: "cache_seqlens.shape[0]", value: "\(cache.seqlens.shape[0])", reason: "must be batch (\(batch))")
    }
    if let index = cache.batchIndex {
      try VarlenChecks.index(index, "cache_batch_idx", location: location)
      if index.shape[0] != batch {
        throw .invalidArgument(name: "cache_batch_idx.shape[0]", value: "\(index.shape[0])", reason: "must be batch (\(batch))")
      }
      if cache.pageTable != nil {
        throw .invalidArgument(
          name: "cache_batch_idx", value: "given", reason: "a paged cache selects its pages with page_table instead")
      }
    }
    if let table = cache.pageTable {
      if table.shape.count != 2 || table.strides.count != 2 || table.strides.contains(where: { $0 < 0 }) {
        throw .invalidArgument(
          name: "page_table.shape", value: "\(table.shape)", reason: "must be (batch, max_pages_per_sequence) with strides >= 0")
      }
      if table.shape[0] != batch {
        throw .invalidArgument(name: "page_table.shape[0]", value: "\(table.shape[0])", reason: "must be batch (\(batch))")
      }
      if table.location != location {
        throw .invalidArgument(name: "page_table.location", value: "\(table.location)", reason: "must be \(location) like q")
      }
      try VarlenChecks.extent(table, "page_table")
      if cache.k.shape[1] < 1 {
        throw .invalidArgument(name: "k_cache.shape[1]", value: "\(cache.k.shape[1])", reason: "page_size must be >= 1")
      }
    }
  }

  /// Each sequence's keys, checked: lengths not negative and within the capacity after the new
  /// tokens, cache rows and the pages actually used within the cache. Table entries past a
  /// sequence's last page are never read, so they may hold anything.
  static func sequences(
    _ cache: KVCache, batch: Int, newTokens: Int, capacity: Int
  ) throws(FlashAttentionError) -> [CacheSequence] {
    var result: [CacheSequence] = []
    result.reserveCapacity(batch)
    let blocks = cache.k.shape[0]
    let pageSize = cache.k.shape[1]
    for b in 0..<batch {
      let cached = Int(cache.seqlens[b])
      if cached < 0 {
        throw .invalidArgument(name: "cache_seqlens[\(b)]", value: "\(cached)", reason: "must be >= 0")
      }
      let (keys, overflow) = cached.addingReportingOverflow(newTokens)
      if overflow || keys > capacity {
        throw .invalidArgument(
          name: "cache_seqlens[\(b)]", value: "\(cached)",
          reason: "with \(newTokens) new tokens the sequence needs \(cached + newTokens) slots; the cache holds \(capacity)")
      }
      if let table = cache.pageTable {
        let used = (keys + pageSize - 1) / pageSize
        var pages: [Int] = []
        pages.reserveCapacity(used)
        for p in 0..<used {
          let page = Int(table[b, p])
          if !(0..<blocks).contains(page) {
            throw .invalidArgument(
              name: "page_table[\(b), \(p)]", value: "\(page)", reason: "must be a page of the cache, 0..<\(blocks)")
          }
          pages.append(page)
        }
        result.append(CacheSequence(cachedTokens: cached, keyCount: keys, cacheRow: -1, pages: pages))
      } else {
        let row = cache.batchIndex.map { Int($0[b]) } ?? b
        if !(0..<blocks).contains(row) {
          throw .invalidArgument(
            name: cache.batchIndex == nil ? "q.shape[0]" : "cache_batch_idx[\(b)]", value: "\(row)",
            reason: "must be a row of the cache, 0..<\(blocks)")
        }
        result.append(CacheSequence(cachedTokens: cached, keyCount: keys, cacheRow: row, pages: []))
      }
    }
    return result
  }
}
