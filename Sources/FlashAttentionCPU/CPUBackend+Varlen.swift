import FlashAttentionCore

/// Packed batches and KV caches on the CPU: each sequence runs as an ordinary call on views of
/// the caller's tensors (no copies, except the pages of a paged cache, which are gathered into
/// one contiguous buffer per sequence). Within a sequence the work is split over heads and query
/// blocks, and over key chunks (split-KV) when those leave threads idle, as in a decode step with
/// few heads: `num_splits` sets the chunks, 0 chooses.
extension CPUBackend: VariableLengthBackend {
  public func varlenForward(_ arguments: VarlenForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try CPUBackend.requireNoStream(stream)
    try CPUBackend.requireHost(arguments.q.location)
    guard let spans = arguments.spans else { return }
    for (index, span) in spans.enumerated() {
      if span.queriesUsed > 0 { try forward(arguments.sequence(span, index: index)) }
      let unused = (span.queryStart + span.queriesUsed)..<(span.queryStart + span.queryLength)
      arguments.out.zeroTokenRows(unused)
      arguments.lse.fillLSEColumns(unused)
    }
    // Rows after the last sequence belong to none: they get the no-key result too.
    let end = (spans.last.map { $0.queryStart + $0.queryLength } ?? 0)..<arguments.q.shape[0]
    arguments.out.zeroTokenRows(end)
    arguments.lse.fillLSEColumns(end)
  }

  public func varlenBackward(_ arguments: VarlenBackwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try CPUBackend.requireNoStream(stream)
    try CPUBackend.requireHost(arguments.dQ.location)
    guard let spans = arguments.forward.spans else { return }
    for (index, span) in spans.enumerated() {
      if span.queriesUsed > 0 || span.keysUsed > 0 { try backward(arguments.sequence(span, index: index)) }
      arguments.dQ.zeroTokenRows((span.queryStart + span.queriesUsed)..<(span.queryStart + span.queryLength))
      let unusedKeys = (span.keyStart + span.keysUsed)..<(span.keyStart + span.keyLength)
      arguments.dK.zeroTokenRows(unusedKeys)
      arguments.dV.zeroTokenRows(unusedKeys)
    }
    let queryEnd = spans.last.map { $0.queryStart + $0.queryLength } ?? 0
    let keyEnd = spans.last.map { $0.keyStart + $0.keyLength } ?? 0
    arguments.dQ.zeroTokenRows(queryEnd..<arguments.dQ.shape[0])
    arguments.dK.zeroTokenRows(keyEnd..<arguments.dK.shape[0])
    arguments.dV.zeroTokenRows(keyEnd..<arguments.dV.shape[0])
  }

  public func kvCacheForward(_ arguments: KVCacheForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try CPUBackend.requireNoStream(stream)
    try CPUBackend.requireHost(arguments.q.location)
    guard let sequences = arguments.sequences else { return }
    let cache = CacheRows(arguments.cache)
    for (b, sequence) in sequences.enumerated() {
      if let kNew = arguments.kNew, let vNew = arguments.vNew {
        cache.append(kNew.batchSlice(b), vNew.batchSlice(b), sequence: sequence)
      }
      let (keys, values) = try cache.keysAndValues(sequence)
      try forward(
        ForwardArguments(
          q: arguments.q.batchSlice(b), k: keys, v: values, out: arguments.out.batchSlice(b),
          lse: arguments.lse.batchSlice(b), options: arguments.options.sequence(b, headsQ: arguments.shape.headsQ)),
        keySplits: arguments.numSplits)
    }
  }

  static func requireNoStream(_ stream: CallerStream?) throws(FlashAttentionError) {
    if stream != nil {
      throw .invalidArgument(name: "stream", value: "given", reason: "CPU tensors take no stream")
    }
  }
}

extension TensorView {
  /// Batch entry `b` of a `[batch, ...]` tensor as a batch of one (no copy).
  func batchSlice(_ b: Int) -> TensorView {
    var view = self
    view.baseAddress = baseAddress + b * strides[0] * dtype.byteSize
    view.shape[0] = 1
    return view
  }
}

/// The rows of a KV cache: where token `t` of a sequence lives, for appending new tokens and for
/// handing the keys to the kernels.
struct CacheRows {
  let cache: KVCache

  init(_ cache: KVCache) { self.cache = cache }

  /// The element offset of token `token`, head 0, in a cache tensor with `strides`.
  private func offset(_ sequence: CacheSequence, token: Int, strides: [Int]) -> Int {
    if sequence.pages.isEmpty {
      return sequence.cacheRow * strides[0] + token * strides[1]
    }
    let pageSize = cache.rowsPerBlock
    return sequence.pages[token / pageSize] * strides[0] + (token % pageSize) * strides[1]
  }

  /// Writes the new tokens `[1, seqlen_new, heads_kv, dim]` at the end of the sequence's cache.
  func append(_ kNew: TensorView, _ vNew: TensorView, sequence: CacheSequence) {
    for (new, target) in [(kNew, cache.k), (vNew, cache.v)] {
      let rowBytes = new.shape[3] * new.dtype.byteSize
      for token in 0..<new.shape[1] {
        let destination = offset(sequence, token: sequence.cachedTokens + token, strides: target.strides)
        for head in 0..<new.shape[2] {
          let from = new.baseAddress + (token * new.strides[1] + head * new.strides[2]) * new.dtype.byteSize
          let to = target.baseAddress + (destination + head * target.strides[2]) * target.dtype.byteSize
          to.copyMemory(from: from, byteCount: rowBytes)
        }
      }
    }
  }

  /// The sequence's keys and values as `[1, keys, heads_kv, dim]` tensors: views of a contiguous
  /// cache, or copies of the pages of a paged one (only the pages the sequence uses are read).
  func keysAndValues(_ sequence: CacheSequence) throws(FlashAttentionError) -> (TensorView, TensorView) {
    if sequence.pages.isEmpty {
      return (rows(cache.k, sequence), rows(cache.v, sequence))
    }
    return (try gathered(cache.k, sequence), try gathered(cache.v, sequence))
  }

  private func rows(_ tensor: TensorView, _ sequence: CacheSequence) -> TensorView {
    var view = tensor
    view.baseAddress = tensor.baseAddress + sequence.cacheRow * tensor.strides[0] * tensor.dtype.byteSize
    view.shape = [1, sequence.keyCount, tensor.shape[2], tensor.shape[3]]
    return view
  }

  private func gathered(_ tensor: TensorView, _ sequence: CacheSequence) throws(FlashAttentionError) -> TensorView {
    let shape = [1, sequence.keyCount, tensor.shape[2], tensor.shape[3]]
    let copy = HostTensor(shape: shape, dtype: tensor.dtype)
    let rowBytes = tensor.shape[3] * tensor.dtype.byteSize
    for token in 0..<sequence.keyCount {
      let source = offset(sequence, token: token, strides: tensor.strides)
      for head in 0..<tensor.shape[2] {
        let from = tensor.baseAddress + (source + head * tensor.strides[2]) * tensor.dtype.byteSize
        let to = copy.storage + ((token * shape[2] + head) * shape[3]) * tensor.dtype.byteSize
        to.copyMemory(from: from, byteCount: rowBytes)
      }
    }
    return copy.view
  }
}
