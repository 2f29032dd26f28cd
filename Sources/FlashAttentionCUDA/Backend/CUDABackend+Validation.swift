import FlashAttentionCore

/// The checks of every CUDA call path (`forward`, `backward`, `enqueueForward`,
/// `enqueueBackward`) beyond what `ForwardArguments`/`BackwardArguments` already validated:
/// what the kernels can run, as typed errors before any conversion that could trap. Static, so
/// that they run (and are tested) without a GPU.
enum CUDACallChecks {
  /// The largest sequence length the kernels take: their row indices are 32-bit and sums such
  /// as `row + seqlen_k - seqlen_q + window` (the window clamped at seqlen_q + seqlen_k) must not
  /// overflow.
  static let maxSequenceLength = 1 << 29

  /// Where heads past 256 are refused on every device.
  static let narrowPathsNote = "varlen and KV-cache calls take up to \(FlashAttention2Key.maxHeadDim)"

  /// Storage, head dims and sizes (all call paths). `maxHeadDim`: 256, or for the fixed-length
  /// forward and backward `FlashAttention2Key.maxWideHeadDim` where the device takes wide heads
  /// (`wideHeadLimit`); `wideHeadsNote` says why a wider head was refused.
  static func problem(
    _ shape: AttentionShape, dtype: DType, backend: String, maxHeadDim: Int = FlashAttention2Key.maxHeadDim,
    wideHeadsNote: String = "up to \(FlashAttention2Key.maxWideHeadDim) in the fixed-length forward and backward; "
      + CUDACallChecks.narrowPathsNote
  ) throws(FlashAttentionError) {
    if dtype == .float32 {
      throw .unsupported(
        backend: backend, feature: "float32 storage (use float16 or bfloat16 tensors; the kernels accumulate in fp32)")
    }
    for (value, label) in [(shape.headDim, "head_dim"), (shape.headDimV, "head_dim_v")]
    where !FlashAttention2Key.supportsHeadDim(value, upTo: maxHeadDim) {
      let note = value <= FlashAttention2Key.maxWideHeadDim && value % 8 == 0 ? "; \(wideHeadsNote)" : ""
      throw .unsupported(
        backend: backend, feature: "\(label) = \(value) (supported here: multiples of 8 up to \(maxHeadDim)\(note))")
    }
    for (value, label) in [(shape.seqlenQ, "seqlen_q"), (shape.seqlenK, "seqlen_k")] where value > maxSequenceLength {
      throw .unsupported(backend: backend, feature: "\(label) = \(value) (the kernels take up to 2^29 tokens)")
    }
    // The grids' y and z dimensions hold heads and batch.
    for (value, label) in [(shape.batch, "batch"), (shape.headsQ, "heads_q")] where value > 65535 {
      throw .unsupported(backend: backend, feature: "\(label) = \(value) (the kernels take up to 65535)")
    }
  }

  /// The score features the kernels compile: ALiBi and dropout are in the FlashAttention-2
  /// kernels and the Hopper forward (the Hopper backward has ALiBi, and hands dropout calls to
  /// FlashAttention-2's); dropout only for fixed-length calls
  /// (`dropoutAllowed`), not yet in the varlen, KV-cache or standard-attention paths.
  static func features(
    _ options: AttentionOptions, backend: String, dropoutAllowed: Bool = false
  ) throws(FlashAttentionError) {
    if options.activeDropout != nil && !dropoutAllowed {
      throw .unsupported(
        backend: backend,
        feature: "dropout (dropout_p > 0) with variable lengths, a KV cache or standard attention: the CPU backend runs it")
    }
  }

  /// The views of an enqueue: device memory of `ordinal`, every row 16-byte aligned (cp.async
  /// and TMA move 16 bytes).
  static func deviceViews(
    _ tensors: [(TensorView, String)], location: MemoryLocation, ordinal: Int, backend: String
  ) throws(FlashAttentionError) {
    switch location {
    case .host:
      throw .unsupported(
        backend: backend,
        feature: "tensors in host memory for an enqueue (pass device memory, or call forward/backward, which stage host tensors)")
    case let .cuda(other) where other != ordinal:
      throw .invalidArgument(name: "q.location", value: "cuda:\(other)", reason: "this backend runs on cuda:\(ordinal)")
    case .cuda:
      break
    }
    for (tensor, label) in tensors {
      let rowStridesAligned = tensor.strides.dropLast().allSatisfy { $0 % 8 == 0 }
      if tensor.deviceAddress % 16 != 0 || !rowStridesAligned {
        throw .unsupported(
          backend: backend,
          feature: "\(label) with base \(tensor.deviceAddress) and strides \(tensor.strides) "
            + "(device tensors need 16-byte aligned rows: base % 16 == 0, strides multiples of 8)")
      }
    }
  }

  /// A stream of the backend's device.
  static func stream(ordinal streamOrdinal: Int, backendOrdinal: Int) throws(FlashAttentionError) {
    if streamOrdinal != backendOrdinal {
      throw .invalidArgument(
        name: "stream", value: "a stream of cuda:\(streamOrdinal)", reason: "this backend runs on cuda:\(backendOrdinal)")
    }
  }
}

extension CUDABackend {
  /// The largest sequence length the kernels take (see `CUDACallChecks.maxSequenceLength`).
  package static var maxSequenceLength: Int { CUDACallChecks.maxSequenceLength }

  func checkProblem(_ shape: AttentionShape, dtype: DType) throws(FlashAttentionError) {
    try CUDACallChecks.problem(shape, dtype: dtype, backend: name)
  }

  /// `checkProblem` for the fixed-length forward and backward, which take heads up to 512 where
  /// the device has the shared memory (`FlashAttention2Key.takesWideHeads`).
  func checkFixedLengthProblem(_ shape: AttentionShape, dtype: DType) throws(FlashAttentionError) {
    let wide = FlashAttention2Key.takesWideHeads(arch: device.arch)
    try CUDACallChecks.problem(
      shape, dtype: dtype, backend: name,
      maxHeadDim: wide ? FlashAttention2Key.maxWideHeadDim : FlashAttention2Key.maxHeadDim,
      wideHeadsNote: wide
        ? CUDACallChecks.narrowPathsNote
        : "heads past \(FlashAttention2Key.maxHeadDim) need \(FlashAttention2Key.wideHeadsSharedMemory / 1024) KiB of "
          + "shared memory per block, which \(device.arch) does not give")
  }

  func checkDeviceCall(
    _ tensors: [(TensorView, String)], location: MemoryLocation, stream: CUDAStream
  ) throws(FlashAttentionError) {
    try CUDACallChecks.deviceViews(tensors, location: location, ordinal: device.ordinal, backend: name)
    try CUDACallChecks.stream(ordinal: stream.device.ordinal, backendOrdinal: device.ordinal)
  }
}
