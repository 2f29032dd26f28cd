import FlashAttentionCore

/// The kernels of packed variable-length calls: the FlashAttention-2 family compiled with
/// `FA_VARLEN`, on every architecture (sm_90a included: the Hopper kernels have no varlen form
/// yet).
extension KernelSelection {
  /// The mask as the kernels' flag sees it: resolved against the longest sequences, which keeps
  /// every bound that some sequence needs (a bound past a sequence's length changes nothing).
  static func varlenMask(_ options: AttentionOptions, shape: AttentionShape) -> AttentionMask {
    AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
  }

  static func varlenForward(
    _ arguments: VarlenForwardArguments, arch: String, tuning: CUDAKernelTuning
  ) -> FlashAttention2Key {
    let shape = arguments.shape
    return FlashAttention2Key.make(
      kind: .forward, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      masked: varlenMask(arguments.options, shape: shape).isMasking, softcap: arguments.options.softcap > 0,
      deterministic: false, arch: arch, tuning: tuning, varlen: true)
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
