import FlashAttentionCore

/// Every kernel variant the library can launch on an architecture, for `flash-attention
/// kernels` and the compile tests.
package enum CUDAKernelCatalog {
  /// Head dims (d, d_v) of the FlashAttention-2 variants: every tile bucket, a d that is not a
  /// multiple of 16, and d_v ≠ d.
  package static let flashAttention2HeadDims: [(Int, Int)] = [
    (8, 8), (40, 40), (64, 64), (96, 96), (128, 128), (160, 160), (192, 192), (192, 128), (256, 256),
  ]

  /// Heads past 256, which only the fixed-length forward and backward take: d = d_v = 512
  /// (Gemma-class), and d 320 with d_v 264 (value chunks of 136 and 128 columns).
  package static let wideHeadDims: [(Int, Int)] = [(320, 264), (512, 512)]

  /// The keys of every family that runs on `arch`: the FlashAttention-2 kernels (one per kind
  /// and head dims, bf16 without masks and fp16 with masking and softcap, the most registers;
  /// `exhaustive` crosses every dtype and flag instead), the standard-attention baseline, and on
  /// sm_90a every Hopper variant (with and without ALiBi and dropout); the
  /// KV-cache kernels (`decodeKeys`) on every arch.
  package static func keys(arch: String, exhaustive: Bool = false) -> [any CUDAKernelKey] {
    var keys: [any CUDAKernelKey] = flashAttention2Keys(arch: arch, exhaustive: exhaustive)
    keys += varlenKeys(arch: arch, exhaustive: exhaustive)
    for dtype in [DType.bfloat16, .float16] {
      keys += StandardAttentionKey.Entry.allCases.map { StandardAttentionKey(entry: $0, dtype: dtype) }
    }
    // wgmma and setmaxnreg exist only on the arch-specific sm_90a target.
    if arch == "sm_90a" {
      keys += HopperForwardKey.allVariants
      keys += HopperBackwardKey.allVariants
      keys += HopperBackwardDQKey.allVariants
      keys += HopperForwardKey.alibiVariants
      keys += HopperForwardKey.alibiTensorCoreVariants
      keys += HopperBackwardKey.alibiVariants
      keys += HopperBackwardKey.alibiTensorCoreVariants
      keys += HopperBackwardDQKey.alibiVariants
      keys += HopperForwardKey.dropoutVariants
      keys += HopperBackwardKey.dropoutVariants
      keys += HopperBackwardDQKey.dropoutVariants
      keys += HopperBackwardKey.dqBulkVariants
      keys += HopperBackwardKey.dqBulkHeadDims.flatMap { d in
        [DType.bfloat16, .float16].map { FlashAttention2Key.hopperPiecesConvert(headDim: d, dtype: $0, arch: arch) }
      }
    }
    keys += decodeKeys(arch: arch, exhaustive: exhaustive)
    return keys
  }

  /// The kernels of packed variable-length calls: the FlashAttention-2 keys compiled with
  /// `FA_VARLEN` (the same head dims and flag sets), the row-clearing and packed-schedule kernels,
  /// and on sm_90a every Hopper variant (forward, backward, backward dQ) with `FA_VARLEN`.
  package static func varlenKeys(arch: String, exhaustive: Bool = false) -> [any CUDAKernelKey] {
    // (Dropout is not in the varlen path: the CUDA backend refuses it there.)
    let varlen: [any CUDAKernelKey] = flashAttention2Keys(arch: arch, exhaustive: exhaustive).filter {
      !$0.dropout && max($0.headDim, $0.headDimV) <= FlashAttention2Key.maxHeadDim
    }.map { key in
      var key = key
      key.varlen = true
      return key
    }
    var keys = varlen + [VarlenClearKey(arch: arch), VarlenScheduleKey(arch: arch)]
    if arch == "sm_90a" {
      keys += HopperForwardKey.allVariants.map { key in
        var key = key
        key.varlen = true
        return key
      }
      keys += HopperBackwardKey.allVariants.map { key in
        var key = key
        key.varlen = true
        return key
      }
      keys += HopperBackwardDQKey.allVariants.map { key in
        var key = key
        key.varlen = true
        return key
      }
    }
    return keys
  }

  /// The FlashAttention-2 keys alone (see `keys(arch:exhaustive:)`).
  package static func flashAttention2Keys(arch: String, exhaustive: Bool = false) -> [FlashAttention2Key] {
    let flagSets: [(DType, Bool, Bool)] =
      exhaustive
      ? [DType.float16, .bfloat16].flatMap { dtype in
        [(dtype, false, false), (dtype, true, false), (dtype, false, true), (dtype, true, true)]
      }
      : [(.bfloat16, false, false), (.float16, true, true)]
    var keys: [FlashAttention2Key] = []
    for (d, dv) in flashAttention2HeadDims + (FlashAttention2Key.takesWideHeads(arch: arch) ? wideHeadDims : []) {
      for (dtype, masked, softcap) in flagSets {
        keys += FlashAttention2Key.Kind.allCases.map { kind in
          FlashAttention2Key.make(
            kind: kind, headDim: d, headDimV: dv, dtype: dtype, masked: masked, softcap: softcap,
            deterministic: false, arch: arch)
        }
        // The ALiBi variants of the two kernels that have the bias.
        keys += [FlashAttention2Key.Kind.forward, .backwardKeyValue].map { kind in
          FlashAttention2Key.make(
            kind: kind, headDim: d, headDimV: dv, dtype: dtype, masked: masked, softcap: softcap,
            deterministic: false, arch: arch, alibi: true)
        }
        // And their dropout variants.
        keys += [FlashAttention2Key.Kind.forward, .backwardKeyValue].map { kind in
          FlashAttention2Key.make(
            kind: kind, headDim: d, headDimV: dv, dtype: dtype, masked: masked, softcap: softcap,
            deterministic: false, arch: arch, dropout: true)
        }
      }
    }
    // A wide V's forward runs in value groups (`make`'s key) or, with `--wide-value chunks`, as
    // one launch per chunk: those launches' keys too, made as the backend makes them.
    var chunks = CUDAKernelTuning()
    chunks.wideValue = .chunks
    let chunkKeys = keys.filter { $0.kind == .forward && $0.valueGroups > 1 }.flatMap { key in
      let first = FlashAttention2Key.make(
        kind: .forward, headDim: key.headDim, headDimV: key.headDimV, dtype: key.dtype, masked: key.masked,
        softcap: key.softcap, deterministic: false, arch: arch, tuning: chunks, alibi: key.alibi, dropout: key.dropout)
      var seen = Set<Int>()
      return first.forwardLaunches(headDimV: key.headDimV).map(\.key).filter { seen.insert($0.headDimV).inserted }
    }
    return keys + chunkKeys
  }
}
