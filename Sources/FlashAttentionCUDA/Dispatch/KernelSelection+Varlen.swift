import FlashAttentionCore

/// The kernels of packed variable-length calls, compiled with `FA_VARLEN`: the Hopper forward on
/// sm_90a where it covers the call, the FlashAttention-2 forward elsewhere; likewise the Hopper
/// backward (fused or split) or the FlashAttention-2 backward.
extension KernelSelection {
  /// The mask as the kernels' flag sees it: resolved against the longest sequences, which keeps
  /// every bound that some sequence needs (a bound past a sequence's length changes nothing).
  static func varlenMask(_ options: AttentionOptions, shape: AttentionShape) -> AttentionMask {
    AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
  }

  /// The Hopper forward (compiled with `FA_VARLEN`) where it covers the call, else the
  /// FlashAttention-2 forward.
  static func varlenForward(
    _ arguments: VarlenForwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> ForwardKernelPlan {
    let shape = arguments.shape
    let mask = varlenMask(arguments.options, shape: shape)
    if tuning.forwardKernels == .automatic, varlenHopperForwardObstacle(arguments, arch: arch) == nil,
      var key = varlenHopperForwardKey(arguments)
    {
      key.varlen = true
      return .hopper(key, persistent: shape.seqlenK <= TileTables.hopperForwardPersistentMaxSeqlenK)
    }
    return .flashAttention2(
      FlashAttention2Key.make(
        kind: .forward, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
        masked: mask.isMasking, softcap: arguments.options.softcap > 0, deterministic: false, arch: arch,
        tuning: tuning, varlen: true))
  }

  static func varlenHopperForwardKey(_ arguments: VarlenForwardArguments) -> HopperForwardKey? {
    let shape = arguments.shape
    return HopperForwardKey(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      mask: HopperForwardKey.MaskKind(varlenMask(arguments.options, shape: shape)),
      softcap: arguments.options.softcap > 0,
      persistent: shape.seqlenK <= TileTables.hopperForwardPersistentMaxSeqlenK, seqlenK: shape.seqlenK)
  }

  /// Why the Hopper forward cannot run this packed call on `arch`, or nil when it can: as for a
  /// fixed-length call (TMA-readable q, k, v; 4-byte output pairs), with keys to describe.
  static func varlenHopperForwardObstacle(_ arguments: VarlenForwardArguments, arch: String) -> String? {
    let shape = arguments.shape
    if arch != "sm_90a" { return "device arch \(arch) is not sm_90a" }
    if shape.seqlenK == 0 || arguments.k.shape[0] == 0 { return "no keys" }
    if varlenHopperForwardKey(arguments) == nil {
      return "dtype \(arguments.q.dtype), head dims \(shape.headDim)/\(shape.headDimV)"
    }
    for (tensor, name) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v")] {
      if let obstacle = packedTensorMapObstacle(tensor, name) { return obstacle }
    }
    if arguments.out.deviceAddress % 4 != 0 || arguments.out.strides.dropLast().contains(where: { $0 % 2 != 0 }) {
      return "out is not 4-byte aligned per row"
    }
    let blockM = varlenHopperForwardKey(arguments)?.blockM ?? 128
    if (shape.seqlenQ + 2 * blockM - 1) / (2 * blockM) * shape.headsQ * shape.batch > Int(Int32.max) {
      return "grid too large"
    }
    return nil
  }

  /// The backward's kernels: the Hopper backward (compiled with `FA_VARLEN`; fused or split as
  /// for a fixed-length call) where it covers the call, else the FlashAttention-2 family; the
  /// preprocess (and the fused form's dQ conversion) always from the FlashAttention-2 family.
  static func varlenBackward(
    _ arguments: VarlenBackwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> BackwardKernelPlan {
    let f = arguments.forward
    let shape = f.shape
    let mask = varlenMask(f.options, shape: shape)
    func key(_ kind: FlashAttention2Key.Kind) -> FlashAttention2Key {
      FlashAttention2Key.make(
        kind: kind, headDim: shape.headDim, headDimV: shape.headDimV, dtype: f.q.dtype,
        masked: mask.isMasking, softcap: f.options.softcap > 0, deterministic: false, arch: arch, tuning: tuning,
        varlen: true)
    }
    let preprocess = key(.backwardPreprocess)
    if varlenHopperBackwardObstacle(arguments, arch: arch) == nil {
      let kind = HopperForwardKey.MaskKind(mask)
      let split = TileTables.hopperBackwardIsSplit(headDim: shape.headDim, deterministic: f.options.deterministic)
      if var keyValue = HopperBackwardKey(headDim: shape.headDim, dtype: f.q.dtype, mask: kind, skipDQ: split) {
        keyValue.varlen = true
        if split, var dq = HopperBackwardDQKey(headDim: shape.headDim, dtype: f.q.dtype, mask: kind) {
          dq.varlen = true
          return BackwardKernelPlan(preprocess: preprocess, form: .hopperSplit(keyValue: keyValue, dq: dq))
        }
        if !split {
          var convert = key(.backwardConvert)
          convert.tile = FlashAttention2Key.untiledConvertTile
          return BackwardKernelPlan(preprocess: preprocess, form: .hopperFused(keyValue: keyValue, convert: convert))
        }
      }
    }
    return BackwardKernelPlan(
      preprocess: preprocess, form: .flashAttention2(keyValue: key(.backwardKeyValue), convert: key(.backwardConvert)))
  }

  /// Why the Hopper backward cannot run this packed call, or nil when it can (as for a
  /// fixed-length call: head dims 64/128/256, no softcap, TMA-readable q, k, v, dout).
  static func varlenHopperBackwardObstacle(_ arguments: VarlenBackwardArguments, arch: String) -> String? {
    let f = arguments.forward
    let shape = f.shape
    if let reason = hopperBackwardCoverage(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: f.q.dtype, softcap: f.options.softcap, arch: arch)
    {
      return reason
    }
    if shape.seqlenQ == 0 || shape.seqlenK == 0 || f.q.shape[0] == 0 || f.k.shape[0] == 0 { return "no queries or keys" }
    for (tensor, name) in [(f.q, "q"), (f.k, "k"), (f.v, "v"), (arguments.dOut, "dout")] {
      if let obstacle = packedTensorMapObstacle(tensor, name) { return obstacle }
    }
    if shape.headsKV > 65535 || shape.headsQ > 65535 || shape.batch > 65535 { return "grid too large" }
    return nil
  }

  /// Why a packed tensor cannot be read through a TMA map: a 16-byte aligned base and strides
  /// that are multiples of 16 bytes below 2^40.
  static func packedTensorMapObstacle(_ tensor: TensorView, _ name: String) -> String? {
    if tensor.deviceAddress % 16 != 0 { return "\(name) is not 16-byte aligned" }
    let fits = tensor.strides.dropLast().allSatisfy { stride in
      let (bytes, overflow) = stride.multipliedReportingOverflow(by: tensor.dtype.byteSize)
      return !overflow && bytes % 16 == 0 && bytes < 1 << 40
    }
    return fits ? nil : "\(name) strides \(tensor.strides) are not multiples of 16 bytes below 2^40"
  }

}
