import FlashAttentionCore

/// The compile-time specialization of the Hopper forward kernel: everything that changes its
/// machine code. Sequence lengths, batch, heads and strides are kernel arguments instead, so
/// one compiled kernel serves every problem size.
package struct HopperForwardKey: CUDAKernelKey {
  /// The mask kinds compiled as separate kernels (no-mask kernels skip the index arithmetic).
  package enum MaskKind: String, Hashable, Sendable, CaseIterable {
    case none
    case causal
    case window

    /// The kernels' `FA_MASK` (`MaskKind` of Kernels/common/mask.cuh).
    var kernelValue: Int {
      switch self {
      case .none: 0
      case .causal: 1
      case .window: 2
      }
    }
  }

  package var headDim: Int
  package var headDimV: Int
  /// Storage of Q, K, V: `.float16`, `.bfloat16` or `.float8E4M3`.
  package var dtype: DType
  /// Storage of O: the input dtype, or `.bfloat16`/`.float16` for fp8 inputs.
  package var output: DType
  package var mask: MaskKind
  package var softcap: Bool
  /// Keys per tile.
  package var blockN: Int
  /// Depth of the K/V shared-memory rings.
  package var stages: Int
  /// Q tile buffers (2: the next work tile's Q loads during this one).
  package var qStages: Int
  /// The two consumer warpgroups take turns issuing their GEMMs (named barriers).
  package var pingPong: Bool
  /// Each warpgroup issues its next QKᵀ before the current softmax (more registers).
  package var overlap: Bool
  /// Consumer warpgroups of 64 query rows (2 or 3).
  package var consumers: Int
  /// Packed variable-length batches (`FA_VARLEN`): each work tile takes its sequence from
  /// `cu_seqlens` by its batch index.
  package var varlen: Bool = false
  /// The ALiBi bias (`FA_ALIBI`, Kernels/hopper/alibi.cuh); 16-bit inputs only.
  package var alibi: Bool = false
  /// With ALiBi: the bias's column part as one more k-step of QKᵀ on the tensor cores
  /// (`FA_ALIBI_MMA`, Kernels/hopper/alibi.cuh) instead of one FFMA per score. Set by
  /// `apply(alibiBias:)`.
  package var alibiOnTensorCores: Bool = false
  /// Dropout on P (`FA_DROPOUT`, Kernels/hopper/dropout.cuh, the keep mask of
  /// common/dropout.cuh); 16-bit inputs only.
  package var dropout: Bool = false
  /// fp8 without softcap: one chunk of four exponentials in every `exp2OnFMAPeriod` computed on
  /// the FMA pipe instead of the MUFU (`FA_EXP2_FMA_PERIOD`, hopper/fp8.cuh `exp2_on_fma`); 0,
  /// the default, keeps them all on the MUFU. Set only by a tuning run (`--fp8-exp2-fma-period`)
  /// until measured.
  package var exp2OnFMAPeriod: Int = 0

  /// The periods `exp2OnFMAPeriod` takes: 0 (off) or one chunk in 2 to 16.
  package static let exp2OnFMAPeriods = [0] + Array(2...16)

  /// Head dims (Q/K, V) the kernel is built and verified for.
  package static let supportedHeadDims: [(Int, Int)] = [(64, 64), (96, 96), (128, 128), (192, 128), (256, 256)]
  /// Head dims of the fp8 (e4m3) kernel.
  package static let supportedFloat8HeadDims: [(Int, Int)] = [(64, 64), (128, 128), (256, 256)]

  /// The key for a problem, with tile sizes from `TileTables.hopperForward`; nil when the Hopper
  /// kernel does not cover it (fp32 storage, an unsupported head dim). `persistent`: the launch
  /// runs one block per SM over many work tiles (`TileTables.hopperForwardPersistentMaxSeqlenK`);
  /// `seqlenK`: the problem's keys per row, which picks among the persistent tiles (0: shortest).
  /// `output`: O's dtype for fp8 inputs (bfloat16 when nil); 16-bit inputs write their own.
  package init?(
    headDim: Int, headDimV: Int, dtype: DType, mask: MaskKind, softcap: Bool, persistent: Bool = false,
    seqlenK: Int = 0, output: DType? = nil
  ) {
    let tile: HopperForwardTile?
    switch dtype {
    case .float16, .bfloat16:
      guard HopperForwardKey.supportedHeadDims.contains(where: { $0 == (headDim, headDimV) }) else { return nil }
      tile = TileTables.hopperForward(
        headDim: headDim, headDimV: headDimV, masked: mask != .none, softcap: softcap, persistent: persistent,
        seqlenK: seqlenK)
    case .float8E4M3:
      guard output == nil || output == .bfloat16 || output == .float16 else { return nil }
      tile = TileTables.hopperForwardFloat8(headDim: headDim, headDimV: headDimV, masked: mask != .none, softcap: softcap)
    case .float32:
      tile = nil
    }
    guard let tile else { return nil }
    self.headDim = headDim
    self.headDimV = headDimV
    self.dtype = dtype
    self.output = dtype.isFloat8 ? output ?? .bfloat16 : dtype
    self.mask = mask
    self.softcap = softcap
    self.blockN = tile.blockN
    self.stages = tile.stages
    self.qStages = tile.qStages
    self.pingPong = tile.pingPong
    self.overlap = tile.overlap
    self.consumers = tile.consumers
  }

  /// Sets the ALiBi and dropout flags. Both together overflow the three-consumer d = 64 tile's
  /// 128 registers per consumer thread once the forward keeps the exact exponent's raw maxima
  /// (316 bytes of spills, NVRTC 13.0.88, 2026-12-06): such keys take the two-consumer d = 64
  /// tile (TileTables.hopperForward's masked one, or its unmasked persistent one).
  package mutating func setFeatures(alibi: Bool, dropout: Bool) {
    self.alibi = alibi
    self.dropout = dropout
    if alibi && dropout && consumers == 3 {
      take(HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: mask != .none, overlap: true))
    }
  }

  /// Takes how the ALiBi bias is added (`--alibi-bias`); keys without ALiBi stay as they are.
  package mutating func apply(alibiBias: CUDAKernelTuning.AlibiBias) {
    alibiOnTensorCores = alibi && alibiBias == .tensorCores
  }

  /// Takes a tuning run's split of the exponentials (`--fp8-exp2-fma-period`): fp8 keys without
  /// softcap only (the kernel's `exp2_on_fma` serves that softmax alone); other keys stay as
  /// they are.
  package mutating func apply(exp2OnFMAPeriod period: Int) {
    guard dtype.isFloat8 && !softcap else { return }
    exp2OnFMAPeriod = period
  }

  /// Takes a tuning run's tile (`--hopper-forward-tile`) instead of the table's; fp8 keys only
  /// where its block N is a multiple of 128 (whole V^T panels), else the key stays as it is.
  package mutating func apply(_ tile: HopperForwardTile) {
    if dtype.isFloat8 && tile.blockN % 128 != 0 { return }
    take(tile)
  }

  /// Replaces the key's tile fields (after init: the ALiBi-and-dropout rule and tuning runs).
  private mutating func take(_ tile: HopperForwardTile) {
    blockN = tile.blockN
    stages = tile.stages
    qStages = tile.qStages
    pingPong = tile.pingPong
    overlap = tile.overlap
    consumers = tile.consumers
  }

  /// Rows of Q per block: one consumer warpgroup per 64.
  package var blockM: Int { 64 * consumers }
  /// Threads per block: one producer warpgroup and the consumers.
  package var threads: Int { 128 * (consumers + 1) }
  package var family: CUDAKernelFamily { .hopper }

  /// Dynamic shared memory the kernel needs: the Q buffers, the K/V ring (head dims rounded up
  /// to 64-column panels), barriers, and slack to align the base to 1024 bytes.
  package var sharedMemoryBytes: Int {
    // A panel is 128 bytes: 64 columns of 16-bit data, 128 of fp8 (which also holds V^T).
    let element = dtype.byteSize
    let panel = 128 / element
    let dimQK = (headDim + panel - 1) / panel * panel
    let dimV = (headDimV + panel - 1) / panel * panel
    let transposedV = dtype.isFloat8 ? stages * blockN * dimV : 0
    // The ALiBi k-step's B panel: one 128-byte core matrix per 8 keys and one past the tile, and
    // its 128-byte alignment.
    let alibiPanel = alibiOnTensorCores ? (blockN / 8 + 1) * 128 + 128 : 0
    return (qStages * blockM * dimQK + stages * blockN * (dimQK + dimV)) * element + transposedV + alibiPanel + 2048
  }

  /// The NVRTC program: the configuration as #defines in front of the embedded source.
  package var program: CUDAProgram {
    let defines = [
      ("FA_HEAD_DIM", headDim), ("FA_HEAD_DIM_V", headDimV), ("FA_BLOCK_N", blockN), ("FA_STAGES", stages),
      ("FA_BF16", output == .bfloat16 ? 1 : 0), ("FA_FP8", dtype.isFloat8 ? 1 : 0), ("FA_MASK", mask.kernelValue), ("FA_SOFTCAP", softcap ? 1 : 0),
      ("FA_PINGPONG", pingPong ? 1 : 0), ("FA_OVERLAP", overlap ? 1 : 0), ("FA_Q_STAGES", qStages),
      ("FA_CONSUMERS", consumers),
    ].map { "#define \($0.0) \($0.1)\n" }.joined()
    // Only varlen keys carry the flag, so the fixed-length programs' text stays as it was.
    let varlenDefine = varlen ? "#define FA_VARLEN 1\n" : ""
    // Likewise ALiBi: plain programs are the text they were before the flag existed.
    let alibiDefine = (alibi ? "#define FA_ALIBI 1\n" : "") + (alibiOnTensorCores ? "#define FA_ALIBI_MMA 1\n" : "")
    // And dropout.
    let dropoutDefine = dropout ? "#define FA_DROPOUT 1\n" : ""
    // And the exponentials' split (fp8 tuning runs only).
    let exp2Define = exp2OnFMAPeriod > 0 ? "#define FA_EXP2_FMA_PERIOD \(exp2OnFMAPeriod)\n" : ""
    return CUDAProgram(
      entry: "flash_fwd_hopper",
      source: defines + varlenDefine + alibiDefine + dropoutDefine + exp2Define + KernelSources.text("hopper/forward.cu"))
  }

  package var description: String {
    "hopper_fwd d\(headDim)x\(headDimV) \(dtype)\(dtype.isFloat8 ? "->\(output)" : "") \(mask)\(softcap ? " softcap" : "") bn\(blockN) st\(stages)"
      + "\(qStages > 1 ? " q\(qStages)" : "")"
      + "\(pingPong ? " pingpong" : "")\(overlap ? " overlap" : "")\(consumers != 2 ? " wg\(consumers)" : "")"
      + (varlen ? " varlen" : "") + (alibi ? (alibiOnTensorCores ? " alibi-mma" : " alibi") : "") + (dropout ? " dropout" : "")
      + (exp2OnFMAPeriod > 0 ? " exp2fma/\(exp2OnFMAPeriod)" : "")
  }

  /// The ALiBi variants the library can launch (fixed-length calls with 16-bit inputs: the
  /// variable-length path refuses ALiBi): each 16-bit variant of `allVariants` with the bias.
  package static var alibiVariants: [HopperForwardKey] {
    allVariants.filter { !$0.dtype.isFloat8 }.map { key in
      var key = key
      key.alibi = true
      return key
    }
  }

  /// The ALiBi variants with the bias's column part on the tensor cores
  /// (`--alibi-bias tensor-cores`), one per `alibiVariants` key.
  package static var alibiTensorCoreVariants: [HopperForwardKey] {
    alibiVariants.map { key in
      var key = key
      key.apply(alibiBias: .tensorCores)
      return key
    }
  }

  /// The dropout variants the library can launch (fixed-length calls with 16-bit inputs: the
  /// variable-length path refuses dropout): each 16-bit variant of `allVariants` with dropout,
  /// and with ALiBi and dropout together.
  package static var dropoutVariants: [HopperForwardKey] {
    let plain = allVariants.filter { !$0.dtype.isFloat8 }.map { key in
      var key = key
      key.dropout = true
      return key
    }
    var withAlibi: [HopperForwardKey] = []
    for key in plain {
      var key = key
      key.setFeatures(alibi: true, dropout: true)
      if !withAlibi.contains(key) { withAlibi.append(key) }
    }
    return plain + withAlibi
  }

  /// Every variant the library can launch, for the `kernels` report and compile checks: one per
  /// head dims, dtype, mask and softcap, plus the persistent-grid tiles where they differ.
  package static var allVariants: [HopperForwardKey] {
    var keys: [HopperForwardKey] = []
    for (d, dv) in supportedHeadDims {
      for dtype in [DType.bfloat16, .float16] {
        for mask in MaskKind.allCases {
          for softcap in [false, true] {
            // The long-sequence grid, then the persistent one at its shortest and longest lengths.
            for (persistent, seqlenK) in [(false, 0), (true, 0), (true, TileTables.hopperForwardPersistentMaxSeqlenK)] {
              let key = HopperForwardKey(
                headDim: d, headDimV: dv, dtype: dtype, mask: mask, softcap: softcap, persistent: persistent,
                seqlenK: seqlenK)
              if let key, !keys.contains(key) { keys.append(key) }
            }
          }
        }
      }
    }
    // fp8: one tile per head dims and mask (no persistent variants), bf16 and fp16 outputs.
    for (d, dv) in supportedFloat8HeadDims {
      for output in [DType.bfloat16, .float16] {
        for mask in MaskKind.allCases {
          for softcap in [false, true] {
            let key = HopperForwardKey(
              headDim: d, headDimV: dv, dtype: .float8E4M3, mask: mask, softcap: softcap, output: output)
            if let key, !keys.contains(key) { keys.append(key) }
          }
        }
      }
    }
    return keys
  }
}
