/// A validated forward call: tensors checked against each other and the options resolved.
/// Backends receive only this, so they never re-validate.
public struct ForwardArguments: Sendable {
  public let q: TensorView
  public let k: TensorView
  public let v: TensorView
  /// `[batch, seqlen_q, heads_q, head_dim_v]`, same dtype as q (bfloat16 or float16 for fp8 q).
  public let out: TensorView
  /// float32 `[batch, heads_q, seqlen_q]`, natural log. A row with no visible key gets -inf.
  public let lse: TensorView
  public let shape: AttentionShape
  public let options: AttentionOptions
  public let scale: Float
  public let mask: AttentionMask
  /// The dequantisation factors of fp8 inputs (empty otherwise).
  public let descale: FP8Descale

  /// Checks ranks, sizes, dtypes, strides and options, and names the first offending argument.
  public init(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView,
    options: AttentionOptions, descale: FP8Descale = .none
  ) throws(FlashAttentionError) {
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    try TensorChecks.refuseFloat8Features(q, options)
    try TensorChecks.expect(out, "out", shape: shape.oShape, dtype: TensorChecks.outputDType(q: q, out: out), location: q.location)
    try TensorChecks.expect(lse, "lse", shape: shape.lseShape, dtype: .float32, location: q.location)
    try descale.validate(dtype: q.dtype, shape: shape, location: q.location)
    self.descale = descale
    self.q = q
    self.k = k
    self.v = v
    self.out = out
    self.lse = lse
    self.shape = shape
    self.options = options
    self.scale = options.resolvedScale(headDim: shape.headDim)
    self.mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
  }
}

/// A validated backward call. dK and dV are summed over the query heads of a GQA group.
public struct BackwardArguments: Sendable {
  public let q: TensorView
  public let k: TensorView
  public let v: TensorView
  public let out: TensorView
  public let lse: TensorView
  public let dOut: TensorView
  public let dQ: TensorView
  public let dK: TensorView
  public let dV: TensorView
  public let shape: AttentionShape
  public let options: AttentionOptions
  public let scale: Float
  public let mask: AttentionMask

  public init(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView,
    dOut: TensorView, dQ: TensorView, dK: TensorView, dV: TensorView, options: AttentionOptions
  ) throws(FlashAttentionError) {
    try TensorChecks.refuseFloat8(q, "the backward pass")
    let shape = try TensorChecks.shape(q: q, k: k, v: v)
    try options.validate(batch: shape.batch, headsQ: shape.headsQ)
    let dtype = q.dtype
    let location = q.location
    try TensorChecks.expect(out, "out", shape: shape.oShape, dtype: dtype, location: location)
    try TensorChecks.expect(lse, "lse", shape: shape.lseShape, dtype: .float32, location: location)
    try TensorChecks.expect(dOut, "dout", shape: shape.oShape, dtype: dtype, location: location)
    try TensorChecks.expect(dQ, "dq", shape: shape.qShape, dtype: dtype, location: location)
    try TensorChecks.expect(dK, "dk", shape: shape.kShape, dtype: dtype, location: location)
    try TensorChecks.expect(dV, "dv", shape: shape.vShape, dtype: dtype, location: location)
    self.q = q
    self.k = k
    self.v = v
    self.out = out
    self.lse = lse
    self.dOut = dOut
    self.dQ = dQ
    self.dK = dK
    self.dV = dV
    self.shape = shape
    self.options = options
    self.scale = options.resolvedScale(headDim: shape.headDim)
    self.mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
  }
}

/// The shared tensor checks behind both argument types.
package enum TensorChecks {
  package static func shape(q: TensorView, k: TensorView, v: TensorView) throws(FlashAttentionError) -> AttentionShape {
    try rank4(q, "q")
    try rank4(k, "k")
    try rank4(v, "v")
    for (tensor, name) in [(k, "k"), (v, "v")] {
      if tensor.dtype != q.dtype {
        throw .invalidArgument(name: "\(name).dtype", value: "\(tensor.dtype)", reason: "must match q.dtype (\(q.dtype))")
      }
      if tensor.location != q.location {
        throw .invalidArgument(
          name: "\(name).location", value: "\(tensor.location)", reason: "must match q's (\(q.location))")
      }
      if tensor.shape[0] != q.shape[0] {
        throw .invalidArgument(
          name: "\(name).shape[0]", value: "\(tensor.shape[0])", reason: "batch must match q.shape[0] (\(q.shape[0]))")
      }
    }
    if v.shape[1] != k.shape[1] {
      throw .invalidArgument(
        name: "v.shape[1]", value: "\(v.shape[1])", reason: "seqlen_k must match k.shape[1] (\(k.shape[1]))")
    }
    if v.shape[2] != k.shape[2] {
      throw .invalidArgument(
        name: "v.shape[2]", value: "\(v.shape[2])", reason: "heads_kv must match k.shape[2] (\(k.shape[2]))")
    }
    if k.shape[3] != q.shape[3] {
      throw .invalidArgument(
        name: "k.shape[3]", value: "\(k.shape[3])", reason: "head_dim must match q.shape[3] (\(q.shape[3]))")
    }
    let shape = AttentionShape(
      batch: q.shape[0], seqlenQ: q.shape[1], seqlenK: k.shape[1], headsQ: q.shape[2],
      headsKV: k.shape[2], headDim: q.shape[3], headDimV: v.shape[3])
    try shape.validate()
    return shape
  }

  /// The dtype `out` must have: q's, except for fp8 inputs, whose output is bfloat16 or float16
  /// (the caller picks by the dtype of `out`).
  package static func outputDType(q: TensorView, out: TensorView) throws(FlashAttentionError) -> DType {
    guard q.dtype.isFloat8 else { return q.dtype }
    if out.dtype != .bfloat16 && out.dtype != .float16 {
      throw .invalidArgument(
        name: "out.dtype", value: "\(out.dtype)", reason: "must be bfloat16 or float16 for \(q.dtype) inputs")
    }
    return out.dtype
  }

  /// fp8 storage is for the dense forward only (FlashAttention-3's rule): a clear refusal for
  /// every other call.
  package static func refuseFloat8(_ q: TensorView, _ call: String) throws(FlashAttentionError) {
    if q.dtype.isFloat8 {
      throw .invalidArgument(
        name: "q.dtype", value: "\(q.dtype)", reason: "fp8 inputs are supported by the forward only, not by \(call)")
    }
  }

  /// The fp8 forward (FlashAttention-3's) has no ALiBi or dropout: both are refused by name
  /// rather than silently ignored.
  package static func refuseFloat8Features(_ q: TensorView, _ options: AttentionOptions) throws(FlashAttentionError) {
    guard q.dtype.isFloat8 else { return }
    if options.alibiSlopes != nil {
      throw .invalidArgument(
        name: "options.alibiSlopes", value: "set", reason: "ALiBi is not supported with \(q.dtype) inputs")
    }
    if options.activeDropout != nil {
      throw .invalidArgument(
        name: "options.dropout", value: "set", reason: "dropout is not supported with \(q.dtype) inputs")
    }
  }

  package static func rank4(_ tensor: TensorView, _ name: String) throws(FlashAttentionError) {
    if tensor.shape.count != 4 {
      throw .invalidArgument(
        name: "\(name).shape", value: "\(tensor.shape)", reason: "must have rank 4 [batch, seqlen, heads, head_dim]")
    }
    try layout(tensor, name)
  }

  /// Checks the sizes and strides of one view: sizes >= 0, strides >= 0 with a unit last one,
  /// and every offset the view can form addressable.
  package static func layout(_ tensor: TensorView, _ name: String) throws(FlashAttentionError) {
    if let axis = tensor.shape.firstIndex(where: { $0 < 0 }) {
      throw .invalidArgument(name: "\(name).shape[\(axis)]", value: "\(tensor.shape[axis])", reason: "must be >= 0")
    }
    if tensor.strides.count != tensor.shape.count {
      throw .invalidArgument(
        name: "\(name).strides", value: "\(tensor.strides)", reason: "needs one stride per dimension of \(tensor.shape)")
    }
    if let last = tensor.strides.last, last != 1, (tensor.shape.last ?? 0) > 1 {
      throw .invalidArgument(name: "\(name).strides", value: "\(tensor.strides)", reason: "the last stride must be 1")
    }
    if tensor.strides.contains(where: { $0 < 0 }) {
      throw .invalidArgument(name: "\(name).strides", value: "\(tensor.strides)", reason: "strides must be >= 0")
    }
    // Every offset a kernel forms, of an element or of the start of a (possibly empty) row, is at
    // most the extent; in bytes it must stay addressable.
    guard let extent = CheckedSize.extent(shape: tensor.shape, strides: tensor.strides),
      CheckedSize.byteCount(elements: extent, dtype: tensor.dtype) != nil
    else {
      if tensor.isContiguous {  // the default strides of a shape too large to lay out
        throw .invalidArgument(
          name: "\(name).shape", value: "\(tensor.shape)",
          reason: "too large: its sizes (empty ones counted as 1) multiply to more than 2^62 bytes")
      }
      throw .invalidArgument(
        name: "\(name).strides", value: "\(tensor.strides) for shape \(tensor.shape)",
        reason: "the view spans more than 2^62 bytes")
    }
  }

  package static func expect(
    _ tensor: TensorView, _ name: String, shape: [Int], dtype: DType, location: MemoryLocation
  ) throws(FlashAttentionError) {
    if tensor.shape != shape {
      throw .invalidArgument(name: "\(name).shape", value: "\(tensor.shape)", reason: "must be \(shape)")
    }
    try layout(tensor, name)
    if tensor.dtype != dtype {
      throw .invalidArgument(name: "\(name).dtype", value: "\(tensor.dtype)", reason: "must be \(dtype)")
    }
    if tensor.location != location {
      throw .invalidArgument(name: "\(name).location", value: "\(tensor.location)", reason: "must be \(location) like q")
    }
  }
}

/// A compute backend. Arguments arrive validated; a backend throws only for what it cannot do
/// (`.unsupported`) or what fails underneath it (memory, driver).
public protocol AttentionBackend: Sendable {
  /// Short name for tables and messages ("cpu", "cuda:0").
  var name: String { get }
  func forward(_ arguments: ForwardArguments) throws(FlashAttentionError)
  func backward(_ arguments: BackwardArguments) throws(FlashAttentionError)
  /// Queues the forward on the caller's stream and returns without waiting (CUDA backends).
  func forward(_ arguments: ForwardArguments, stream: CallerStream) throws(FlashAttentionError)
  /// Queues the backward on the caller's stream and returns without waiting (CUDA backends).
  func backward(_ arguments: BackwardArguments, stream: CallerStream) throws(FlashAttentionError)
}

extension AttentionBackend {
  /// Backends without streams (the CPU) refuse one.
  public func forward(_ arguments: ForwardArguments, stream: CallerStream) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "a caller's CUDA stream")
  }

  public func backward(_ arguments: BackwardArguments, stream: CallerStream) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "a caller's CUDA stream")
  }
}

extension ForwardArguments {
  /// The problem shape implied by q, k, v (validated), for callers that allocate outputs.
  public static func inferredShape(q: TensorView, k: TensorView, v: TensorView) throws(FlashAttentionError) -> AttentionShape {
    try TensorChecks.shape(q: q, k: k, v: v)
  }
}
