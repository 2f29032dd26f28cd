/// Where each sequence of a packed (variable-length) batch lies: FlashAttention's `cu_seqlens`
/// convention. Sequence `b` holds rows `cuSeqlensQ[b] ..< cuSeqlensQ[b + 1]` of q (and likewise
/// of k and v with `cuSeqlensK`); `seqUsedQ/K`, when given, keep only that many leading rows of
/// each sequence. Every per-sequence rule (causal, window) uses the sequence's own lengths.
public struct VarlenSequences: Sendable {
  /// int32 `(batch + 1)`: prefix sums of the query lengths, first 0.
  public var cuSeqlensQ: IndexTensorView
  /// int32 `(batch + 1)`: prefix sums of the key lengths, first 0.
  public var cuSeqlensK: IndexTensorView
  /// Upper bounds of the lengths (the kernels size their grids by them).
  public var maxSeqlenQ: Int
  public var maxSeqlenK: Int
  /// Optional int32 `(batch)`: queries (keys) of each sequence that count; the rest are ignored
  /// (their output rows are 0, their LSE -inf, their gradients 0).
  public var seqUsedQ: IndexTensorView?
  public var seqUsedK: IndexTensorView?

  public init(
    cuSeqlensQ: IndexTensorView, cuSeqlensK: IndexTensorView, maxSeqlenQ: Int, maxSeqlenK: Int,
    seqUsedQ: IndexTensorView? = nil, seqUsedK: IndexTensorView? = nil
  ) {
    self.cuSeqlensQ = cuSeqlensQ
    self.cuSeqlensK = cuSeqlensK
    self.maxSeqlenQ = maxSeqlenQ
    self.maxSeqlenK = maxSeqlenK
    self.seqUsedQ = seqUsedQ
    self.seqUsedK = seqUsedK
  }

  /// Host `[Int32]` lengths, with `maxSeqlen` taken from them: the convenience for tests and tools.
  public init(lengthsQ: [Int], lengthsK: [Int]) {
    func prefix(_ lengths: [Int]) -> [Int32] { lengths.reduce(into: [Int32(0)]) { $0.append($0.last! + Int32($1)) } }
    self.init(
      cuSeqlensQ: IndexTensorView(prefix(lengthsQ)), cuSeqlensK: IndexTensorView(prefix(lengthsK)),
      maxSeqlenQ: lengthsQ.max() ?? 0, maxSeqlenK: lengthsK.max() ?? 0)
  }

  public var batch: Int { max((cuSeqlensQ.shape.first ?? 1) - 1, 0) }
}

/// One sequence of a host varlen batch: its rows in the packed tensors and how many count.
public struct SequenceSpan: Sendable, Hashable {
  public var queryStart: Int
  /// Rows of the sequence in q (`cu_seqlens_q[b+1] - cu_seqlens_q[b]`).
  public var queryLength: Int
  /// Rows that count (`seqused_q[b]`, else `queryLength`).
  public var queriesUsed: Int
  public var keyStart: Int
  public var keyLength: Int
  public var keysUsed: Int
}

/// The checks shared by the varlen argument types.
package enum VarlenChecks {
  /// q, k, v of a packed batch: `(total, heads, dim)` each, k and v with the same rows and heads,
  /// q and k with the same head dim, GQA heads. Returns the sizes as an `AttentionShape` whose
  /// batch is the sequence count and whose lengths are the maxima.
  package static func shape(
    q: TensorView, k: TensorView, v: TensorView, sequences: VarlenSequences
  ) throws(FlashAttentionError) -> AttentionShape {
    try TensorChecks.refuseFloat8(q, "variable-length batches")
    for (tensor, name) in [(q, "q"), (k, "k"), (v, "v")] {
      try rank(tensor, 3, name, "(total_tokens, heads, head_dim)")
    }
    for (tensor, name) in [(k, "k"), (v, "v")] {
      if tensor.dtype != q.dtype {
        throw .invalidArgument(name: "\(name).dtype", value: "\(tensor.dtype)", reason: "must match q.dtype (\(q.dtype))")
      }
      if tensor.location != q.location {
        throw .invalidArgument(name: "\(name).location", value: "\(tensor.location)", reason: "must match q's (\(q.location))")
      }
    }
    if v.shape[0] != k.shape[0] {
      throw .invalidArgument(name: "v.shape[0]", value: "\(v.shape[0])", reason: "total_k must match k.shape[0] (\(k.shape[0]))")
    }
    if v.shape[1] != k.shape[1] {
      throw .invalidArgument(name: "v.shape[1]", value: "\(v.shape[1])", reason: "heads_kv must match k.shape[1] (\(k.shape[1]))")
    }
    if k.shape[2] != q.shape[2] {
      throw .invalidArgument(name: "k.shape[2]", value: "\(k.shape[2])", reason: "head_dim must match q.shape[2] (\(q.shape[2]))")
    }
    try index(sequences.cuSeqlensQ, "cu_seqlens_q", location: q.location)
    try index(sequences.cuSeqlensK, "cu_seqlens_k", location: q.location)
    let batch = sequences.cuSeqlensQ.shape[0] - 1
    if batch < 0 {
      throw .invalidArgument(name: "cu_seqlens_q.shape[0]", value: "0", reason: "must be batch + 1 >= 1")
    }
    if sequences.cuSeqlensK.shape[0] != batch + 1 {
      throw .invalidArgument(
        name: "cu_seqlens_k.shape[0]", value: "\(sequences.cuSeqlensK.shape[0])",
        reason: "must match cu_seqlens_q.shape[0] (\(batch + 1))")
    }
    for (used, name) in [(sequences.seqUsedQ, "seqused_q"), (sequences.seqUsedK, "seqused_k")] {
      guard let used else { continue }
      try index(used, name, location: q.location)
      if used.shape[0] != batch {
        throw .invalidArgument(name: "\(name).shape[0]", value: "\(used.shape[0])", reason: "must be batch (\(batch))")
      }
    }
    for (value, name) in [(sequences.maxSeqlenQ, "max_seqlen_q"), (sequences.maxSeqlenK, "max_seqlen_k")] where value < 0 {
      throw .invalidArgument(name: name, value: "\(value)", reason: "must be >= 0")
    }
    let shape = AttentionShape(
      batch: batch, seqlenQ: sequences.maxSeqlenQ, seqlenK: sequences.maxSeqlenK, headsQ: q.shape[1],
      headsKV: k.shape[1], headDim: q.shape[2], headDimV: v.shape[2])
    try shape.validate()
    return shape
  }

  /// The spans of a host batch, checked: prefix sums that start at 0 and never decrease, end
  /// within the tensors, lengths within the maxima, used counts within the lengths.
  package static func spans(
    _ sequences: VarlenSequences, totalQ: Int, totalK: Int
  ) throws(FlashAttentionError) -> [SequenceSpan] {
    let cuQ = sequences.cuSeqlensQ.hostValues
    let cuK = sequences.cuSeqlensK.hostValues
    let usedQ = sequences.seqUsedQ?.hostValues
    let usedK = sequences.seqUsedK?.hostValues
    for (cu, name, total, limit) in [
      (cuQ, "cu_seqlens_q", totalQ, sequences.maxSeqlenQ), (cuK, "cu_seqlens_k", totalK, sequences.maxSeqlenK),
    ] {
      if cu.first != 0 {
        throw .invalidArgument(name: "\(name)[0]", value: "\(cu.first ?? 0)", reason: "must be 0")
      }
      for b in 1..<cu.count {
        let length = cu[b] - cu[b - 1]
        if length < 0 {
          throw .invalidArgument(name: "\(name)[\(b)]", value: "\(cu[b])", reason: "must be >= \(name)[\(b - 1)] (\(cu[b - 1]))")
        }
        if length > limit {
          throw .invalidArgument(
            name: "\(name)[\(b)]", value: "\(cu[b])",
            reason: "sequence \(b - 1) has \(length) tokens, more than max_seqlen (\(limit))")
        }
      }
      if let last = cu.last, last > total {
        throw .invalidArgument(
          name: "\(name)[\(cu.count - 1)]", value: "\(last)", reason: "exceeds the tensor's \(total) rows")
      }
    }
    var spans: [SequenceSpan] = []
    for b in 0..<(cuQ.count - 1) {
      let lengthQ = cuQ[b + 1] - cuQ[b]
      let lengthK = cuK[b + 1] - cuK[b]
      let queries = usedQ?[b] ?? lengthQ
      let keys = usedK?[b] ?? lengthK
      if !(0...lengthQ).contains(queries) {
        throw .invalidArgument(name: "seqused_q[\(b)]", value: "\(queries)", reason: "must be in 0...\(lengthQ)")
      }
      if !(0...lengthK).contains(keys) {
        throw .invalidArgument(name: "seqused_k[\(b)]", value: "\(keys)", reason: "must be in 0...\(lengthK)")
      }
      spans.append(
        SequenceSpan(
          queryStart: cuQ[b], queryLength: lengthQ, queriesUsed: queries, keyStart: cuK[b], keyLength: lengthK,
          keysUsed: keys))
    }
    return spans
  }

  package static func rank(_ tensor: TensorView, _ rank: Int, _ name: String, _ layout: String) throws(FlashAttentionError) {
    if tensor.shape.count != rank {
      throw .invalidArgument(name: "\(name).shape", value: "\(tensor.shape)", reason: "must have rank \(rank) \(layout)")
    }
    try TensorChecks.layout(tensor, name)
  }

  package static func index(_ tensor: IndexTensorView, _ name: String, location: MemoryLocation) throws(FlashAttentionError) {
    if tensor.shape.count != 1 {
      throw .invalidArgument(name: "\(name).shape", value: "\(tensor.shape)", reason: "must be a vector")
    }
    if tensor.strides.count != 1 || tensor.strides[0] < 0 {
      throw .invalidArgument(name: "\(name).strides", value: "\(tensor.strides)", reason: "must be one stride >= 0")
    }
    if tensor.location != location {
      throw .invalidArgument(name: "\(name).location", value: "\(tensor.location)", reason: "must be \(location) like q")
    }
    try extent(tensor, name)
  }

  /// Index data whose offsets (in 4-byte elements) would overflow is refused before it is read.
  package static func extent(_ tensor: IndexTensorView, _ name: String) throws(FlashAttentionError) {
    if tensor.shape.contains(where: { $0 < 0 }) {
      throw .invalidArgument(name: "\(name).shape", value: "\(tensor.shape)", reason: "sizes must be >= 0")
    }
    guard let extent = CheckedSize.extent(shape: tensor.shape, strides: tensor.strides),
      CheckedSize.product(extent, 4) != nil
    else {
      throw .invalidArgument(
        name: "\(name).strides", value: "\(tensor.strides) for shape \(tensor.shape)", reason: "the view spans more than 2^62 bytes")
    }
  }
}

/// A view of rows `start ..< start + count` of a packed `(total, heads, dim)` tensor as the
/// `[1, count, heads, dim]` tensor of one sequence (no copy).
extension TensorView {
  public func sequenceRows(start: Int, count: Int) -> TensorView {
    var view = self
    view.baseAddress = baseAddress + start * strides[0] * dtype.byteSize
    view.shape = [1, count, shape[1], shape[2]]
    view.strides = [0, strides[0], strides[1], strides[2]]
    return view
  }

  /// Columns `start ..< start + count` of a packed LSE `(heads, total)` as `[1, heads, count]`.
  public func sequenceColumns(start: Int, count: Int) -> TensorView {
    var view = self
    view.baseAddress = baseAddress + start * strides[1] * dtype.byteSize
    view.shape = [1, shape[0], count]
    view.strides = [0, strides[0], strides[1]]
    return view
  }
}
