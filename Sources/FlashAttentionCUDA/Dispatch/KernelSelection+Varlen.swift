import FlashAttentionCore

/// The kernels of packed variable-length calls, compiled with `FA_VARLEN`: the Hopper forward on
/// sm_90a where it covers the call, the FlashAttention-2 forward elsewhere; the backward is the
/// FlashAttention-2 family on every architecture (the Hopper backward has no varlen form yet).
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
      if tensor.deviceAddress % 16 != 0 { return "\(name) is not 16-byte aligned" }
      let fits = tensor.strides.dropLast().allSatisfy { stride in
        let (bytes, overflow) = stride.multipliedReportingOverflow(by: tensor.dtype.byteSize)
        return !overflow && bytes % 16 == 0 && bytes < 1 << 40
      }
      if !fits { return "\(name) strides \(tensor.strides) are not multiples of 16 bytes below 2^40" }
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

  static func varlenBackward(
    _ arguments: VarlenBackwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> VarlenBackwardPlan {
    let f = arguments.forward
    let shape = f.shape
    func key(_ kind: FlashAttention2Key.Kind) -> FlashAttention2Key {
      FlashAttention2Key.make(
        kind: kind, headDim: shape.headDim, headDimV: shape.headDimV, dtype: f.q.dtype,
        masked: varlenMask(f.options, shape: shape).isMasking, softcap: f.options.softcap > 0, deterministic: false,
        arch: arch, tuning: tuning, varlen: true)
    }
    return VarlenBackwardPlan(preprocess: key(.backwardPreprocess), keyValue: key(.backwardKeyValue), convert: key(.backwardConvert))
  }
}
