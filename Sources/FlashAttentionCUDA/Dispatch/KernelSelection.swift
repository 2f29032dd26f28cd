import FlashAttentionCore

/// The kernel one forward call runs.
package enum ForwardKernelPlan: Sendable, Hashable {
  /// The wgmma/TMA kernel (sm_90a), on the persistent grid or one block per work item.
  case hopper(HopperForwardKey, persistent: Bool)
  case flashAttention2(FlashAttention2Key)

  package var keys: [any CUDAKernelKey] {
    switch self {
    case let .hopper(key, _): [key]
    case let .flashAttention2(key): [key]
    }
  }
}

/// The kernels one backward call runs, in order: the preprocess (D = rowsum(dO ∘ O), the LSE in
/// log2 units), then one of three forms.
package struct BackwardKernelPlan: Sendable, Hashable {
  package enum Form: Sendable, Hashable {
    /// FlashAttention-2: dK, dV and dQ additions into an fp32 accumulator laid out for the
    /// key/value kernel's tile, then the conversion of dQ.
    case flashAttention2(keyValue: FlashAttention2Key, convert: FlashAttention2Key)
    /// Hopper, fused: dK, dV and dQ additions into an accumulator `[batch, seqlen_q, heads_q,
    /// head_dim]`, then the conversion.
    case hopperFused(keyValue: HopperBackwardKey, convert: FlashAttention2Key)
    /// Hopper, split: dK and dV, then a kernel per query block that writes dQ (no atomics).
    case hopperSplit(keyValue: HopperBackwardKey, dq: HopperBackwardDQKey)
  }

  package var preprocess: FlashAttention2Key
  package var form: Form

  package var keys: [any CUDAKernelKey] {
    switch form {
    case let .flashAttention2(keyValue, convert): [preprocess, keyValue, convert]
    case let .hopperFused(keyValue, convert): [preprocess, keyValue, convert]
    case let .hopperSplit(keyValue, dq): [preprocess, keyValue, dq]
    }
  }
}

/// One selection function per pass: which kernels run a validated call on a device.
enum KernelSelection {
  /// The forward's kernel: the Hopper kernel where it covers the call, else FlashAttention-2.
  static func forward(
    _ arguments: ForwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> ForwardKernelPlan {
    // fp8 has no FlashAttention-2 kernel: the Hopper kernel whatever the tuning (the backend
    // refuses a call it cannot take).
    if tuning.forwardKernels == .automatic || arguments.q.dtype.isFloat8, hopperTakesAlibi(arguments.options, tuning),
      hopperTakesDropout(arguments.options, tuning), hopperForwardObstacle(arguments, arch: arch) == nil,
      var key = hopperForwardKey(arguments)
    {
      if let tile = tuning.hopperForwardTile { key.apply(tile) }
      key.apply(exp2OnFMAPeriod: tuning.float8Exp2OnFMAPeriod)
      key.apply(alibiBias: tuning.alibiBias)
      return .hopper(key, persistent: arguments.shape.seqlenK <= TileTables.hopperForwardPersistentMaxSeqlenK)
    }
    let shape = arguments.shape
    return .flashAttention2(
      FlashAttention2Key.make(
        kind: .forward, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
        masked: arguments.mask.isMasking, softcap: arguments.options.softcap > 0, deterministic: false, arch: arch,
        tuning: tuning, alibi: arguments.options.alibiSlopes != nil,
        dropout: arguments.options.activeDropout != nil))
  }

  /// The backward's kernels (see `BackwardKernelPlan`).
  static func backward(
    _ arguments: BackwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> BackwardKernelPlan {
    let shape = arguments.shape
    func flashAttention2(_ kind: FlashAttention2Key.Kind) -> FlashAttention2Key {
      FlashAttention2Key.make(
        kind: kind, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
        masked: arguments.mask.isMasking, softcap: arguments.options.softcap > 0, deterministic: false, arch: arch,
        tuning: tuning, alibi: arguments.options.alibiSlopes != nil,
        dropout: arguments.options.activeDropout != nil)
    }
    let preprocess = flashAttention2(.backwardPreprocess)
    if hopperTakesAlibi(arguments.options, tuning), hopperTakesDropout(arguments.options, tuning),
      hopperBackwardObstacle(arguments, arch: arch) == nil
    {
      let mask = HopperForwardKey.MaskKind(arguments.mask)
      let alibi = arguments.options.alibiSlopes != nil
      let dropout = arguments.options.activeDropout != nil
      let form = hopperBackwardForm(
        headDim: shape.headDim, mask: mask, deterministic: arguments.options.deterministic, alibi: alibi,
        dropout: dropout, tuning: tuning)
      let split = form == .split
      if var keyValue = HopperBackwardKey(headDim: shape.headDim, dtype: arguments.q.dtype, mask: mask, skipDQ: split) {
        keyValue.alibi = alibi
        keyValue.dropout = dropout
        keyValue.apply(alibiBias: tuning.alibiBias)
        if form == .fusedBulk || form == .fusedBulkDQFirst {
          keyValue.dqBulk = true
          // dQ first only where that variant compiles without spills, the table's rule, also when
          // a tuning asks for it (a window, ALiBi under a mask and dropout at d 128 keep the order).
          keyValue.dqFirst = form == .fusedBulkDQFirst && keyValue.acceptsDQFirst
          let convert = FlashAttention2Key.hopperPiecesConvert(headDim: shape.headDim, dtype: arguments.q.dtype, arch: arch)
          return BackwardKernelPlan(preprocess: preprocess, form: .hopperFused(keyValue: keyValue, convert: convert))
        }
        if split, var dq = HopperBackwardDQKey(headDim: shape.headDim, dtype: arguments.q.dtype, mask: mask) {
          dq.alibi = alibi
          dq.dropout = dropout
          return BackwardKernelPlan(preprocess: preprocess, form: .hopperSplit(keyValue: keyValue, dq: dq))
        }
        if !split {
          // The fused kernel adds into the atomics layout, which a convert key without a tile reads.
          var convert = flashAttention2(.backwardConvert)
          convert.tile = FlashAttention2Key.untiledConvertTile
          return BackwardKernelPlan(preprocess: preprocess, form: .hopperFused(keyValue: keyValue, convert: convert))
        }
      }
    }
    return BackwardKernelPlan(
      preprocess: preprocess,
      form: .flashAttention2(keyValue: flashAttention2(.backwardKeyValue), convert: flashAttention2(.backwardConvert)))
  }

  /// The Hopper backward's form for a call. The table: fused with bulk dQ reductions where a key
  /// takes them (`TileTables.hopperBackwardTakesBulk`, `HopperBackwardKey.acceptsDQBulk`: d 64/128,
  /// fixed length, not deterministic; every mask, ALiBi and dropout), with dQ's GEMM first where
  /// that variant compiles without spills (`HopperBackwardKey.acceptsDQFirst`), else split in the
  /// deterministic mode and from d = 128 on
  /// (`TileTables.hopperBackwardIsSplit`) and fused with atomics at d = 64. A tuning's form
  /// replaces the table's outside the deterministic mode (`.fusedBulk` only where a key takes it).
  static func hopperBackwardForm(
    headDim: Int, mask: HopperForwardKey.MaskKind, deterministic: Bool, alibi: Bool, dropout: Bool,
    tuning: CUDAKernelTuning
  ) -> CUDAKernelTuning.HopperBackwardForm {
    let base: CUDAKernelTuning.HopperBackwardForm =
      TileTables.hopperBackwardIsSplit(headDim: headDim, deterministic: deterministic) ? .split : .fused
    var key = HopperBackwardKey(headDim: headDim, dtype: .bfloat16, mask: mask)
    key?.alibi = alibi
    key?.dropout = dropout
    let bulkFits = !deterministic && key?.acceptsDQBulk == true
    // dQ's GEMM first (r20) wherever its variant compiles without spills (acceptsDQFirst).
    let bulk: CUDAKernelTuning.HopperBackwardForm = key?.acceptsDQFirst == true ? .fusedBulkDQFirst : .fusedBulk
    let table = bulkFits && TileTables.hopperBackwardTakesBulk(headDim: headDim) ? bulk : base
    if deterministic || tuning.hopperBackwardForm == .automatic { return table }
    if (tuning.hopperBackwardForm == .fusedBulk || tuning.hopperBackwardForm == .fusedBulkDQFirst) && !bulkFits {
      return base
    }
    return tuning.hopperBackwardForm
  }

  // MARK: Where the Hopper kernels apply

  /// Whether the tuning lets the Hopper kernels run a call with these options: always without
  /// ALiBi; with ALiBi unless `--alibi-kernels sm80` asks for the FlashAttention-2 kernels.
  static func hopperTakesAlibi(_ options: AttentionOptions, _ tuning: CUDAKernelTuning) -> Bool {
    options.alibiSlopes == nil || tuning.alibiKernels == .hopper
  }

  /// Whether the tuning lets the Hopper kernels run a call with these options: always without
  /// dropout; with dropout unless `--dropout-kernels sm80` asks for the FlashAttention-2 kernels
  /// (forward and backward).
  static func hopperTakesDropout(_ options: AttentionOptions, _ tuning: CUDAKernelTuning) -> Bool {
    options.activeDropout == nil || tuning.dropoutKernels == .hopper
  }

  /// The Hopper forward's key for a call, or nil when no variant covers it.
  static func hopperForwardKey(_ arguments: ForwardArguments) -> HopperForwardKey? {
    var key = HopperForwardKey(
      headDim: arguments.shape.headDim, headDimV: arguments.shape.headDimV, dtype: arguments.q.dtype,
      mask: HopperForwardKey.MaskKind(arguments.mask), softcap: arguments.options.softcap > 0,
      persistent: arguments.shape.seqlenK <= TileTables.hopperForwardPersistentMaxSeqlenK,
      seqlenK: arguments.shape.seqlenK, output: arguments.out.dtype)
    key?.setFeatures(alibi: arguments.options.alibiSlopes != nil, dropout: arguments.options.activeDropout != nil)
    return key
  }

  /// Why the Hopper forward cannot run this call on `arch`, or nil when it can. TMA needs
  /// 16-byte aligned base addresses and strides that are multiples of 16 bytes (below 2^40);
  /// the output is written as 4-byte pairs and the LSE rows must be contiguous.
  static func hopperForwardObstacle(_ arguments: ForwardArguments, arch: String) -> String? {
    let shape = arguments.shape
    if arch != "sm_90a" { return "device arch \(arch) is not sm_90a" }
    // The fp8 kernel has no ALiBi (the 16-bit ones compile it in with FA_ALIBI).
    if arguments.options.alibiSlopes != nil && arguments.q.dtype.isFloat8 { return "ALiBi with float8_e4m3fn inputs" }
    // The fp8 kernel has no dropout (the 16-bit ones compile it in with FA_DROPOUT).
    if arguments.options.activeDropout != nil && arguments.q.dtype.isFloat8 { return "dropout with float8_e4m3fn inputs" }
    // No keys: nothing for TMA to describe; the FlashAttention-2 kernel writes the zeros and -inf.
    if shape.seqlenK == 0 { return "seqlen_k is 0" }
    if hopperForwardKey(arguments) == nil {
      return "dtype \(arguments.q.dtype), head dims \(shape.headDim)/\(shape.headDimV)"
    }
    for (tensor, name) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v")] {
      if let obstacle = tensorMapObstacle(tensor, name) { return obstacle }
    }
    if arguments.out.deviceAddress % 4 != 0 || arguments.out.strides.dropLast().contains(where: { $0 % 2 != 0 }) {
      return "out is not 4-byte aligned per row"
    }
    if shape.seqlenQ > 1, arguments.lse.strides[2] != 1 { return "lse rows are not contiguous" }
    if (shape.seqlenQ + 255) / 256 * shape.headsQ * shape.batch > Int(Int32.max) { return "grid too large" }
    return nil
  }

  /// Why the Hopper backward kernels do not cover a call with these features, or nil when they
  /// do. Softcap stays on the FlashAttention-2 kernel (its dS needs the tanh derivative, not in
  /// these kernels); so do head dims other than 64, 128 and 256 (d = d_v).
  static func hopperBackwardCoverage(
    headDim: Int, headDimV: Int, dtype: DType, softcap: Float, arch: String
  ) -> String? {
    if arch != "sm_90a" { return "device arch \(arch) is not sm_90a" }
    if headDim != headDimV || !HopperBackwardKey.supportedHeadDims.contains(headDim) {
      return "head dims \(headDim)/\(headDimV) (the Hopper backward covers d = d_v = 64, 128 or 256)"
    }
    if dtype != .float16 && dtype != .bfloat16 { return "dtype \(dtype)" }
    if softcap > 0 { return "softcap" }
    return nil
  }

  /// Why the Hopper backward cannot run this call, or nil when it can.
  static func hopperBackwardObstacle(_ arguments: BackwardArguments, arch: String) -> String? {
    let shape = arguments.shape
    if let reason = hopperBackwardCoverage(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      softcap: arguments.options.softcap, arch: arch)
    {
      return reason
    }
    if arguments.options.activeDropout != nil && !HopperBackwardKey.dropoutHeadDims.contains(shape.headDim) {
      return "dropout at head dim \(shape.headDim) (the Hopper backward takes it at d = 64 and 128)"
    }
    if shape.seqlenQ == 0 || shape.seqlenK == 0 { return "an empty sequence" }
    for (tensor, name) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.dOut, "dout")] {
      if let obstacle = tensorMapObstacle(tensor, name) { return obstacle }
    }
    if shape.headsKV > 65535 || shape.headsQ > 65535 || shape.batch > 65535 { return "grid too large" }
    return nil
  }

  /// Why a tensor cannot be read through a TMA map: the base must be 16-byte aligned and the
  /// strides multiples of 16 bytes below 2^40.
  private static func tensorMapObstacle(_ tensor: TensorView, _ name: String) -> String? {
    if tensor.deviceAddress % 16 != 0 { return "\(name) is not 16-byte aligned" }
    let fits = tensor.strides.dropLast().allSatisfy { stride in
      let (bytes, overflow) = stride.multipliedReportingOverflow(by: tensor.dtype.byteSize)
      return !overflow && bytes % 16 == 0 && bytes < 1 << 40
    }
    if !fits {
      return "\(name) strides \(tensor.strides) are not multiples of 16 bytes below 2^40"
    }
    return nil
  }
}

extension HopperForwardKey.MaskKind {
  /// The compiled mask of a resolved mask: causal (the window (left, 0)), another window, none.
  init(_ mask: AttentionMask) {
    self = mask.right == 0 ? .causal : mask.isMasking ? .window : .none
  }
}
