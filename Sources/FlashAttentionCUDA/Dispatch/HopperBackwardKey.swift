import FlashAttentionCore

/// The compile-time specialization of the Hopper backward kernel (`Kernels/hopper/backward.cu`). Its
/// tile follows the head dim: 64 queries per step; 128 keys per block (64 per consumer
/// warpgroup) for d = 64 and 128, 64 keys shared by both warpgroups (each owning half of the
/// head dim) for d = 256.
package struct HopperBackwardKey: CUDAKernelKey {
  package var headDim: Int
  /// `.float16` or `.bfloat16`.
  package var dtype: DType
  package var mask: HopperForwardKey.MaskKind
  /// Q/dO (and LSE/D) buffers: the next steps' loads run while this one computes.
  package var qStages: Int
  /// dK and dV only: dQ comes from `HopperBackwardDQKey`'s kernel (the split backward).
  package var skipDQ: Bool

  /// Head dims the kernel is built and verified for (d = d_v); others use the sm80 backward.
  package static let supportedHeadDims = [64, 128, 256]
  package static let blockM = 64
  package var threads: Int { 384 }
  package var family: CUDAKernelFamily { .hopper }

  /// Keys per block.
  package var blockN: Int { TileTables.hopperBackwardKeys(headDim: headDim) }

  /// Nil when the kernel does not cover the configuration (fp32, another head dim).
  package init?(headDim: Int, dtype: DType, mask: HopperForwardKey.MaskKind, skipDQ: Bool = false, qStages: Int = 2) {
    guard dtype == .float16 || dtype == .bfloat16, Self.supportedHeadDims.contains(headDim), qStages >= 1 else {
      return nil
    }
    self.headDim = headDim
    self.dtype = dtype
    self.mask = mask
    self.skipDQ = skipDQ
    self.qStages = qStages
  }

  /// Packed variable-length batches (`FA_VARLEN`): each block takes its sequence from
  /// `cu_seqlens` by its batch index.
  package var varlen = false
  /// The ALiBi bias (`FA_ALIBI`, Kernels/hopper/alibi.cuh).
  package var alibi = false
  /// With ALiBi (bf16): the bias as one more k-step of Sᵀ on the tensor cores (`FA_ALIBI_MMA`)
  /// instead of S^T's accumulator starting from it. Set by `apply(alibiBias:)`.
  package var alibiOnTensorCores = false
  /// Dropout (`FA_DROPOUT`, Kernels/hopper/dropout.cuh): head dims 64 and 128 only.
  package var dropout = false
  /// The fused form's dQ added by bulk reductions of shared-memory pieces (`FA_DQ_BULK`) instead
  /// of per-thread `red.global.add`: the accumulator is then in the pieces' layout, which
  /// `FlashAttention2Key.hopperPiecesConvert` undoes. Fixed length, d = 64 and 128, with dQ only.
  package var dqBulk = false
  /// With `dqBulk`: each step issues dQ's GEMM before dV's and dK's and stages dQ while they run
  /// (`FA_DQ_FIRST`); the table's order for calls without ALiBi or dropout (r20).
  package var dqFirst = false

  /// Head dims where the fused form can stage dQ for bulk reductions (d = 256's shared memory is
  /// full).
  package static let dqBulkHeadDims = [64, 128]

  /// The d = 128 bulk variants stage dQ from one address register per row (`FA_DQ_STAGE_ROW`)
  /// instead of the default staging: the two-sided window and ALiBi alone unmasked spill
  /// without it; plain ones gained 3 % in the main kernel (r27, H100: 2.86 -> 2.77 ms at 4k);
  /// every other d = 128 variant compiles spill-free with it too (NVRTC 13.0.88), except dropout
  /// without a mask (16-24 bytes), which keeps the default staging.
  var stagesByRow: Bool { dqBulk && headDim == 128 && !(dropout && mask == .none) }

  /// Whether this key can take `dqBulk`: fused, fixed length, d = 64/128; every mask, ALiBi and
  /// dropout compile with 0 spills (NVRTC 13.0.88; the d = 128 windows and ALiBi alone unmasked
  /// through `stagesByRow`).
  package var acceptsDQBulk: Bool {
    !skipDQ && !varlen && Self.dqBulkHeadDims.contains(headDim)
  }

  /// Whether this key can also take `dqFirst` with 0 spills (NVRTC 13.0.88): no window (16 bytes
  /// at d = 128), and at d = 128 neither dropout (40-72 bytes) nor ALiBi under a causal mask
  /// (8 bytes, by row too); d = 64 takes it with every feature.
  package var acceptsDQFirst: Bool {
    acceptsDQBulk && mask != .window && (headDim == 64 || (!dropout && (!alibi || mask == .none)))
  }

  /// Head dims whose kernels take dropout: d = 256 passes P^T through shared memory, which dV
  /// would need dropped and dS^T undropped, so it stays on the FlashAttention-2 backward.
  package static let dropoutHeadDims = [64, 128]

  /// Floats of one stage's row statistics: LSE2 and D; with ALiBi also the step's slope, padded
  /// to 16 bytes (`STATS_FLOATS` of the kernel).
  var statsFloats: Int { 2 * Self.blockM + (alibi ? 4 : 0) }

  /// K and V (blockN rows), `qStages` Q and dO buffers (blockM rows), two dS buffers
  /// (blockM × blockN; d = 256 also two P buffers), `qStages` LSE/D rows, the mbarriers, and
  /// 1024 bytes to align the base (the 128-byte swizzle repeats every 1024).
  package var sharedMemoryBytes: Int {
    let (m, n) = (Self.blockM, blockN)
    let scoreBuffers = headDim == 256 ? 4 : 2
    let tiles = 2 * n * headDim * 2 + 2 * qStages * m * headDim * 2 + scoreBuffers * m * n * 2
    let stats = qStages * statsFloats * 4
    let barriers = 8 + 4 * 8 * qStages
    let dqPieces = dqBulk ? m * headDim * 4 : 0
    // The ALiBi k-step's B panel (one core matrix per 8 queries and one past) and its alignment.
    let alibiPanel = alibiOnTensorCores ? (m / 8 + 1) * 128 + 128 : 0
    return 1024 + tiles + dqPieces + stats + barriers + alibiPanel
  }

  /// The NVRTC program: the configuration as #defines, the common part, then the kernel.
  package var program: CUDAProgram {
    let defines = [
      ("FA_HEAD_DIM", headDim), ("FA_Q_STAGES", qStages), ("FA_BF16", dtype == .bfloat16 ? 1 : 0),
      ("FA_MASK", mask.kernelValue),
      ("FA_BWD_SKIP_DQ", skipDQ ? 1 : 0),
    ].map { "#define \($0.0) \($0.1)\n" }.joined()
    // Only varlen keys carry the flag, so the fixed-length programs' text stays as it was.
    let varlenDefine = varlen ? "#define FA_VARLEN 1\n" : ""
    let alibiDefine = (alibi ? "#define FA_ALIBI 1\n" : "") + (alibiOnTensorCores ? "#define FA_ALIBI_MMA 1\n" : "")
    let dropoutDefine = dropout ? "#define FA_DROPOUT 1\n" : ""
    let bulkDefine = (dqBulk ? "#define FA_DQ_BULK 1\n" : "") + (dqFirst ? "#define FA_DQ_FIRST 1\n" : "")
      + (stagesByRow ? "#define FA_DQ_STAGE_ROW 1\n" : "")
    return CUDAProgram(
      entry: "flash_bwd_hopper",
      source: defines + varlenDefine + alibiDefine + dropoutDefine + bulkDefine + KernelSources.text("hopper/backward.cu"))
  }

  package var description: String {
    "hopper_bwd d\(headDim) \(dtype) \(mask) \(Self.blockM)x\(blockN)\(skipDQ ? " no-dq" : "")"
      + "\(qStages != 2 ? " q\(qStages)" : "")" + (varlen ? " varlen" : "")
      + (alibi ? (alibiOnTensorCores ? " alibi-mma" : " alibi") : "")
      + (dropout ? " dropout" : "") + (dqBulk ? " dq-bulk" : "") + (dqFirst ? " dq-first" : "")
  }

  /// Takes how the ALiBi bias is added (`--alibi-bias`): bf16 keys with ALiBi only (the
  /// k-step's per-key remainder needs bf16's range).
  package mutating func apply(alibiBias: CUDAKernelTuning.AlibiBias) {
    alibiOnTensorCores = alibi && alibiBias == .tensorCores && acceptsAlibiOnTensorCores
  }

  /// Whether this key compiles with the bias on the tensor cores without spills (NVRTC 13.0.88,
  /// 2026-12-08): bf16, and at d = 128 neither dropout without a causal mask (16-44 bytes with
  /// bulk dQ) nor a window in the fused form with atomics (16 bytes).
  package var acceptsAlibiOnTensorCores: Bool {
    dtype == .bfloat16
      && !(headDim == 128 && ((dropout && mask != .causal) || (mask == .window && !skipDQ && !dqBulk)))
  }

  /// The ALiBi variants with the bias on the tensor cores (`--alibi-bias tensor-cores`): the bf16
  /// ones of `alibiVariants` and of the ALiBi `dqBulkVariants`.
  package static var alibiTensorCoreVariants: [HopperBackwardKey] {
    (alibiVariants + dqBulkVariants.filter(\.alibi)).compactMap { key in
      var key = key
      key.apply(alibiBias: .tensorCores)
      return key.alibiOnTensorCores ? key : nil
    }
  }

  /// The ALiBi variants (fixed-length calls: the variable-length path refuses ALiBi).
  package static var alibiVariants: [HopperBackwardKey] {
    allVariants.map { key in
      var key = key
      key.alibi = true
      return key
    }
  }

  /// The dropout variants the library can launch (fixed-length calls: the variable-length path
  /// refuses dropout), with and without ALiBi: d = 64 and 128, each in the form the selection
  /// runs (`TileTables.hopperBackwardIsSplit`: d = 64 fused, or split when deterministic; d = 128
  /// split). The fused d = 128 form with atomics is never chosen and is left out (with dropout
  /// under a mask its registers spill); the bulk-reduction forms are `dqBulkVariants`.
  package static var dropoutVariants: [HopperBackwardKey] {
    allVariants.filter { key in
      dropoutHeadDims.contains(key.headDim)
        && (key.skipDQ || !TileTables.hopperBackwardIsSplit(headDim: key.headDim, deterministic: false))
    }.withDropout(\.dropout, alibi: \.alibi)
  }

  /// Every variant the library can launch, for the `kernels` report and the compile checks:
  /// with and without dQ at every head dim (d = 64 splits only in the deterministic mode).
  package static var allVariants: [HopperBackwardKey] {
    supportedHeadDims.flatMap { d in
      [DType.bfloat16, .float16].flatMap { dtype in
        HopperForwardKey.MaskKind.allCases.flatMap { mask in
          [false, true].compactMap { HopperBackwardKey(headDim: d, dtype: dtype, mask: mask, skipDQ: $0) }
        }
      }
    }
  }

  /// The fused variants with bulk dQ reductions (`dqBulk`): plain, with ALiBi, with dropout
  /// and with both, where they take it, and each also with `dqFirst` where it takes that.
  package static var dqBulkVariants: [HopperBackwardKey] {
    allVariants.flatMap { key in
      [(false, false), (true, false), (false, true), (true, true)].flatMap { alibi, dropout in
        [false, true].compactMap { first in
          var key = key
          key.alibi = alibi
          key.dropout = dropout
          guard key.acceptsDQBulk, !first || key.acceptsDQFirst else { return nil }
          key.dqBulk = true
          key.dqFirst = first
          return key
        }
      }
    }
  }
}

/// The compile-time specialization of the split backward's dQ kernel (`Kernels/hopper/backward_dq.cu`):
/// 128 query rows per block (64 per consumer warpgroup), K and V in tiles of `blockN` keys.
package struct HopperBackwardDQKey: CUDAKernelKey {
  package var headDim: Int
  /// `.float16` or `.bfloat16`.
  package var dtype: DType
  package var mask: HopperForwardKey.MaskKind

  package static let blockM = 128
  package var threads: Int { 384 }
  package var family: CUDAKernelFamily { .hopper }

  package init?(headDim: Int, dtype: DType, mask: HopperForwardKey.MaskKind) {
    guard dtype == .float16 || dtype == .bfloat16, HopperBackwardKey.supportedHeadDims.contains(headDim) else {
      return nil
    }
    self.headDim = headDim
    self.dtype = dtype
    self.mask = mask
  }

  /// Packed variable-length batches (`FA_VARLEN`), as `HopperBackwardKey.varlen`.
  package var varlen = false
  /// The ALiBi bias (`FA_ALIBI`), as `HopperBackwardKey.alibi`.
  package var alibi = false
  /// Dropout (`FA_DROPOUT`), as `HopperBackwardKey.dropout`.
  package var dropout = false

  /// Keys per K/V tile (`TileTables.hopperBackwardDQKeys`).
  package var blockN: Int { TileTables.hopperBackwardDQKeys(headDim: headDim) }

  /// Q and dO (blockM rows), two stages of K and V, the mbarriers, 1024 bytes of alignment.
  package var sharedMemoryBytes: Int {
    1024 + 2 * Self.blockM * headDim * 2 + 2 * 2 * blockN * headDim * 2 + 8 + 4 * 8 * 2
  }

  package var program: CUDAProgram {
    let defines = [
      ("FA_HEAD_DIM", headDim), ("FA_DQ_BLOCK_N", blockN), ("FA_BF16", dtype == .bfloat16 ? 1 : 0),
      ("FA_MASK", mask.kernelValue),
    ].map { "#define \($0.0) \($0.1)\n" }.joined()
    let varlenDefine = varlen ? "#define FA_VARLEN 1\n" : ""
    let alibiDefine = alibi ? "#define FA_ALIBI 1\n" : ""
    let dropoutDefine = dropout ? "#define FA_DROPOUT 1\n" : ""
    return CUDAProgram(
      entry: "flash_bwd_dq_hopper",
      source: defines + varlenDefine + alibiDefine + dropoutDefine + KernelSources.text("hopper/backward_dq.cu"))
  }

  package var description: String {
    "hopper_bwd_dq d\(headDim) \(dtype) \(mask) \(Self.blockM)x\(blockN)" + (varlen ? " varlen" : "")
      + (alibi ? " alibi" : "") + (dropout ? " dropout" : "")
  }

  /// The ALiBi variants (fixed-length calls).
  package static var alibiVariants: [HopperBackwardDQKey] {
    allVariants.map { key in
      var key = key
      key.alibi = true
      return key
    }
  }

  /// The dropout variants (fixed-length calls, d = 64 and 128), with and without ALiBi.
  package static var dropoutVariants: [HopperBackwardDQKey] {
    allVariants.filter { HopperBackwardKey.dropoutHeadDims.contains($0.headDim) }.withDropout(\.dropout, alibi: \.alibi)
  }

  package static var allVariants: [HopperBackwardDQKey] {
    HopperBackwardKey.supportedHeadDims.flatMap { d in
      [DType.bfloat16, .float16].flatMap { dtype in
        HopperForwardKey.MaskKind.allCases.compactMap { HopperBackwardDQKey(headDim: d, dtype: dtype, mask: $0) }
      }
    }
  }
}

extension Array {
  /// Each key with its dropout flag set, first without and then with ALiBi: the dropout variants
  /// of the two backward kernels.
  fileprivate func withDropout(_ dropout: WritableKeyPath<Element, Bool>, alibi: WritableKeyPath<Element, Bool>) -> [Element] {
    flatMap { key in
      [false, true].map { withAlibi in
        var key = key
        key[keyPath: dropout] = true
        key[keyPath: alibi] = withAlibi
        return key
      }
    }
  }
}
