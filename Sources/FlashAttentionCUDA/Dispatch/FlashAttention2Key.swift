import FlashAttentionCore

/// The specialization of one FlashAttention-2 kernel (`Kernels/sm80/`: the forward and the
/// three backward kernels), which run on every GPU since Ampere.
package struct FlashAttention2Key: CUDAKernelKey {
  package enum Kind: String, Sendable, CaseIterable {
    case forward
    /// D = rowsum(dO ∘ O) and the LSE in log2 units, per query row.
    case backwardPreprocess
    /// dK and dV for one key block, and dQ added into an fp32 accumulator.
    case backwardKeyValue
    /// dQ accumulator × scale → storage dtype.
    case backwardConvert
  }

  package var kind: Kind
  package var headDim: Int
  package var headDimV: Int
  /// `.float16` or `.bfloat16` (fp32 inputs are converted on the device first).
  package var dtype: DType
  /// Causal or sliding window: per-row key ranges and whole-tile skipping.
  package var masked: Bool
  package var softcap: Bool
  /// Backward only: dQ accumulated by one CTA per query block instead of atomics.
  package var deterministic: Bool
  package var tile: AttentionTile
  package var arch: String
  /// Forward and key/value kernels: the ALiBi bias (`common/alibi.cuh`), compiled in only here,
  /// so plain attention's kernels are unchanged.
  package var alibi: Bool = false
  /// Packed variable-length batches (`FA_VARLEN`): the batch index selects a sequence of
  /// `cu_seqlens`, whose own lengths bound the tiles and the mask.
  package var varlen: Bool = false
  /// Forward and key/value kernels: dropout on P (`common/dropout.cuh`), compiled in only here.
  package var dropout: Bool = false
  /// Convert kernels only: the accumulator is in the pieces of the Hopper fused backward's bulk
  /// reductions (`HopperBackwardKey.dqBulk`): 64 query rows, one piece per consumer warpgroup,
  /// each half of the head dim (the sm80 bulk layout of a 64-row tile of two warps side by side).
  package var hopperPieces: Bool = false
  /// Forward only, d_v past 256 (`CUDAKernelTuning.WideValue.groups`): the block's warps form
  /// this many groups, each holding O for its share of d_v's columns and computing the same S
  /// (`FA_VGROUPS`); 1 otherwise.
  package var valueGroups: Int = 1

  package var description: String {
    var text = "\(kind.rawValue) d=\(headDim)"
    if headDimV != headDim { text += " dv=\(headDimV)" }
    text += " \(dtype == .bfloat16 ? "bf16" : "fp16") \(tile)"
    if masked { text += " masked" }
    if softcap { text += " softcap" }
    if deterministic { text += " deterministic" }
    if alibi { text += " alibi" }
    if varlen { text += " varlen" }
    if dropout { text += " dropout" }
    if hopperPieces { text += " hopper-pieces" }
    if valueGroups > 1 { text += " vgroups\(valueGroups)" }
    return text + " \(arch)"
  }

  /// The preprocess kernel's block: `preprocessWarps` warps, each loading `preprocessRowsPerWarp`
  /// query rows before it sums any (one memory round trip for them), a row split over
  /// `preprocessLanesPerRow` lanes of 8 columns (16-byte loads); its grid covers the rows in
  /// blocks of `preprocessRowsPerBlock`.
  package static let preprocessWarps = 8
  package static var preprocessThreads: Int { preprocessWarps * 32 }

  /// Lanes over one row of `headDimV` columns: the next power of two at or above its 8-column
  /// chunks (the kernel's LANES_PER_ROW).
  package static func preprocessLanesPerRow(headDimV: Int) -> Int {
    let chunks = (headDimV + 7) / 8
    var lanes = 1
    while lanes < chunks && lanes < 32 { lanes *= 2 }
    return lanes
  }

  /// Rows per warp: eight (four at d_v > 128, where a lane holds a row's chunk per row), and at
  /// least one warp-wide load's rows (32 / lanes per row).
  package static func preprocessRowsPerWarp(headDimV: Int) -> Int {
    max(headDimV > 128 ? 4 : 8, 32 / preprocessLanesPerRow(headDimV: headDimV))
  }

  package static func preprocessRowsPerBlock(headDimV: Int) -> Int {
    preprocessWarps * preprocessRowsPerWarp(headDimV: headDimV)
  }

  /// The preprocess grid over `rows` query rows, `heads` heads and `batch` entries.
  package static func preprocessGrid(rows: Int, heads: Int, batch: Int, headDimV: Int) -> (Int, Int, Int) {
    let perBlock = preprocessRowsPerBlock(headDimV: headDimV)
    return (max(1, (rows + perBlock - 1) / perBlock), heads, batch)
  }

  /// The widest head dim of every path (varlen, KV cache, the Hopper kernels).
  package static let maxHeadDim = 256
  /// The widest head dim of the fixed-length forward and backward (Gemma-class d = 512): the
  /// forward runs value columns in chunks (`forwardValueChunks`), the backward one 32 x 32 tile.
  package static let maxWideHeadDim = 512

  /// The head dims the kernels support: every multiple of 8 up to `limit`.
  package static func supportsHeadDim(_ value: Int, upTo limit: Int = maxHeadDim) -> Bool {
    value >= 8 && value <= limit && value % 8 == 0
  }

  /// Value columns of one forward launch. The forward keeps O (its rows x d_v, fp32) in
  /// registers, which at d_v = 512 would be 256 a thread; so a wider V runs as chunks of at most
  /// 256 columns, each launch recomputing S (the same bits, so the same LSE) and writing its own
  /// columns of O. The cost is Q K^T once per chunk: at d = d_v = 512, 1.5x the forward's FLOPs.
  package static let forwardValueColumns = 256

  /// The forward's value chunks for `headDimV` columns: one chunk up to 256; past it as few as
  /// cover it, of equal widths rounded up to 8 (the last takes the rest).
  package static func forwardValueChunks(headDimV: Int) -> [(offset: Int, width: Int)] {
    guard headDimV > forwardValueColumns else { return [(0, headDimV)] }
    let count = forwardValueGroups(headDimV: headDimV)
    let width = ((headDimV + count - 1) / count + 7) / 8 * 8
    return stride(from: 0, to: headDimV, by: width).map { ($0, min(width, headDimV - $0)) }
  }

  /// Whether `arch` gives a block the shared memory that heads past 256 need (the backward's
  /// 32 x 32 tile with one Q/dO buffer, 135 KiB at d = d_v = 512): sm_80 and sm_90 do, sm_86/89 not.
  package static func takesWideHeads(arch: String) -> Bool {
    backwardTileFits(wideHeadsTile, headDim: maxWideHeadDim, headDimV: maxWideHeadDim, arch: arch)
  }

  /// The backward's tile at d = d_v = 512, which sets what heads past 256 need.
  private static var wideHeadsTile: AttentionTile {
    TileTables.flashAttention2BackwardCandidates(headDim: maxWideHeadDim, headDimV: maxWideHeadDim)[0]
  }

  static func paddedTo16(_ value: Int) -> Int { (value + 15) / 16 * 16 }

  /// Dynamic shared memory of the forward kernel: Q, K and V tiles with 16-byte padded rows.
  package var sharedMemoryBytes: Int {
    switch kind {
    case .forward:
      return Self.forwardSharedMemory(tile: tile, headDim: headDim, headDimV: headDimV, valueGroups: valueGroups)
    case .backwardKeyValue:
      let plan = backwardPlan
      return Self.backwardSharedMemory(
        tile: tile, headDim: headDim, headDimV: headDimV, buffers: plan.buffers, dqStaging: plan.reduction == .bulk)
    case .backwardPreprocess, .backwardConvert:
      return 0
    }
  }

  package var threads: Int { tile.warps * 32 * valueGroups }
  package var family: CUDAKernelFamily { .flashAttention2 }

  /// The NVRTC program: the feature `#define`s, then the shared primitives, then the kernel.
  package var program: CUDAProgram {
    let body: String
    let entry: String
    switch kind {
    case .forward:
      body = KernelSources.text("sm80/forward.cu")
      entry = "flash_forward"
    case .backwardPreprocess:
      body = KernelSources.text("sm80/backward.cu")
      entry = "flash_backward_preprocess"
    case .backwardKeyValue:
      body = KernelSources.text("sm80/backward.cu")
      entry = "flash_backward_kv"
    case .backwardConvert:
      body = KernelSources.text("sm80/backward.cu")
      entry = "flash_backward_convert_dq"
    }
    var defines = [
      "FA_D \(headDim)", "FA_DV \(headDimV)", "FA_BM \(tile.blockM)", "FA_BN \(tile.blockN)",
      "FA_WARPS \(tile.warps)", "FA_BF16 \(dtype == .bfloat16 ? 1 : 0)",
      "FA_MASK \(masked ? 2 : 0)", "FA_SOFTCAP \(softcap ? 1 : 0)",
      "FA_Q_IN_REGS \(tile.qInRegisters ? 1 : 0)", "FA_DETERMINISTIC \(deterministic ? 1 : 0)",
    ]
    if kind == .backwardPreprocess {
      defines += ["FA_PRE_WARPS \(Self.preprocessWarps)", "FA_PRE_ROWS \(Self.preprocessRowsPerWarp(headDimV: headDimV))"]
    }
    // Only in the keys that have it: plain attention's programs stay byte for byte as before.
    if alibi { defines.append("FA_ALIBI 1") }
    if dropout { defines.append("FA_DROPOUT 1") }
    if valueGroups > 1 { defines.append("FA_VGROUPS \(valueGroups)") }
    if kind == .backwardKeyValue {
      let widths = [Self.paddedTo32(headDim), Self.paddedTo32(headDimV)]
      let plan = backwardPlan
      defines += [
        "FA_BWD_WM_S \(Self.warpRows(rows: tile.blockM, columns: [tile.blockN], warps: tile.warps))",
        "FA_BWD_WN_KV \(Self.warpRows(rows: tile.blockN, columns: widths, warps: tile.warps))",
        "FA_BWD_WM_Q \(Self.warpRows(rows: tile.blockM, columns: [widths[0]], warps: tile.warps))",
        "FA_BWD_DOUBLE \(plan.buffers == 2 ? 1 : 0)", "FA_BWD_UNROLL \(plan.unroll)",
        "FA_DQ_BULK \(plan.reduction.rawValue)",
      ]
    }
    if kind == .backwardConvert {
      let reduction = convertReduction
      defines.append("FA_DQ_BULK \(reduction.rawValue)")
      if reduction != .atomics { defines.append("FA_BWD_WM_Q \(convertWarpRowsQ)") }
    }
    // Only varlen keys carry the flag, so the fixed-length programs' text stays as it was.
    if varlen { defines.append("FA_VARLEN 1") }
    defines.append("FA_ENTRY_\(entry) 1")
    defines.sort()
    let header = defines.map { "#define \($0)\n" }.joined()
    return CUDAProgram(entry: entry, source: header + body)
  }
}

extension FlashAttention2Key {
  /// The key with the tile table's choice for `kind` and the head dims.
  package static func make(
    kind: Kind, headDim: Int, headDimV: Int, dtype: DType, masked: Bool, softcap: Bool,
    deterministic: Bool, arch: String, tuning: CUDAKernelTuning = CUDAKernelTuning(), alibi: Bool = false,
    varlen: Bool = false, dropout: Bool = false
  ) -> FlashAttention2Key {
    var key = fixedLength(
      kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked, softcap: softcap,
      deterministic: deterministic, arch: arch, tuning: tuning)
    // The bias is in the forward and the key/value kernel; the elementwise ones never see it.
    if alibi && (kind == .forward || kind == .backwardKeyValue) { key.alibi = true }
    if dropout && (kind == .forward || kind == .backwardKeyValue) { key.dropout = true }
    key.varlen = varlen
    return key
  }

  private static func fixedLength(
    kind: Kind, headDim: Int, headDimV: Int, dtype: DType, masked: Bool, softcap: Bool,
    deterministic: Bool, arch: String, tuning: CUDAKernelTuning
  ) -> FlashAttention2Key {
    switch kind {
    case .forward:
      // A wide V runs in warp groups (one launch), or in chunks: then the key is the first
      // chunk's and the launch makes the others'.
      let groups = tuning.wideValue == .groups ? forwardValueGroups(headDimV: headDimV) : 1
      let keyV = groups > 1 ? headDimV : forwardValueChunks(headDimV: headDimV)[0].width
      var key = FlashAttention2Key(
        kind: kind, headDim: headDim, headDimV: keyV, dtype: dtype, masked: masked, softcap: softcap,
        deterministic: deterministic, tile: tuned(tuning.forwardTile, headDim: headDim, headDimV: keyV)
          ?? TileTables.flashAttention2Forward(headDim: headDim, headDimV: keyV, arch: arch, valueGroups: groups),
        arch: arch)
      key.valueGroups = groups
      return key
    case .backwardKeyValue:
      let tile = tuning.backwardTile.flatMap { backwardTileFits($0, headDim: headDim, headDimV: headDimV, arch: arch) ? $0 : nil }
      return FlashAttention2Key(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked, softcap: softcap,
        deterministic: deterministic, tile: tile ?? backwardTile(headDim: headDim, headDimV: headDimV, arch: arch),
        arch: arch)
    case .backwardPreprocess, .backwardConvert:
      // Elementwise kernels: only the head dims and the dtype matter, and for the dQ conversion
      // the key/value kernel's tile where that kernel lays the accumulator out in its tiles.
      var tile = kind == .backwardConvert ? untiledConvertTile : AttentionTile(blockM: 0, blockN: 0, warps: 4, qInRegisters: false)
      if kind == .backwardConvert {
        let keyValue = make(
          kind: .backwardKeyValue, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked,
          softcap: softcap, deterministic: deterministic, arch: arch, tuning: tuning)
        if keyValue.backwardPlan.reduction != .atomics { tile = keyValue.tile }
      }
      return FlashAttention2Key(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: false, softcap: false,
        deterministic: false, tile: tile, arch: arch)
    }
  }

  /// The convert kernel for the Hopper fused backward's bulk pieces (`hopperPieces`): its tile
  /// carries the pieces' geometry, 64 rows (`HopperBackwardKey.blockM`) and two warpgroups.
  package static func hopperPiecesConvert(headDim: Int, dtype: DType, arch: String) -> FlashAttention2Key {
    var key = FlashAttention2Key(
      kind: .backwardConvert, headDim: headDim, headDimV: headDim, dtype: dtype, masked: false, softcap: false,
      deterministic: false, tile: AttentionTile(blockM: HopperBackwardKey.blockM, blockN: 0, warps: 2, qInRegisters: false),
      arch: arch)
    key.hopperPieces = true
    return key
  }

  /// The accumulator layout a convert key undoes: it follows the key/value kernel's tile
  /// (carried in `tile`), the Hopper pieces' with `hopperPieces`, the atomics layout untiled.
  var convertReduction: DQReduction {
    hopperPieces ? .bulk
      : tile.blockM > 0
      ? Self.backwardPlan(tile: tile, headDim: headDim, headDimV: headDimV, softcap: false, arch: arch).reduction
      : .atomics
  }

  /// The rows of warps over a bulk accumulator's pieces (the kernels' `FA_BWD_WM_Q`): the key/value
  /// kernel's split of its tile; the Hopper pieces' two "warps" (the consumer warpgroups) lie side
  /// by side over the head dim, all 64 rows each.
  var convertWarpRowsQ: Int {
    hopperPieces ? 1 : Self.warpRows(rows: tile.blockM, columns: [Self.paddedTo32(headDim)], warps: tile.warps)
  }

  /// Columns of one (row, head) a convert thread writes: a whole 8-column chunk of a bulk piece
  /// whose width (`TD_Q`: the padded head dim over the warps side by side) is a multiple of 8
  /// (two 16-byte loads, one 16-byte store), else a column pair (the kernel's `#if`).
  package var convertColumnsPerThread: Int {
    guard convertReduction != .atomics else { return 2 }
    return (Self.paddedTo32(headDim) / (tile.warps / convertWarpRowsQ)) % 8 == 0 ? 8 : 2
  }

  /// The convert launch's blocks along x for `rows` rows of `heads` heads: one thread per
  /// `convertColumnsPerThread` columns (the kernel's loop strides over any remainder).
  package func convertBlocks(rows: Int, heads: Int) -> Int {
    let perThread = convertColumnsPerThread
    let items = rows * heads * ((headDim + perThread - 1) / perThread)
    return max(1, min((items + 255) / 256, 4096))
  }

  /// The convert kernel's tile when the accumulator is in the atomics layout
  /// `[batch, seqlenQ, headsQ, headDim]` (no key/value tile to undo).
  static let untiledConvertTile = AttentionTile(blockM: 0, blockN: 0, warps: 8, qInRegisters: false)

  /// How the backward adds dQ into its fp32 accumulator (the kernels' `FA_DQ_BULK`).
  package enum DQReduction: Int, Sendable {
    /// Each thread adds its fragments' column pairs with `red.global.add` (every architecture);
    /// the accumulator is `[batch, seqlenQ, headsQ, headDim]`.
    case atomics = 0
    /// Each warp stages its piece of a step's dQ in a shared-memory buffer of its own and adds
    /// it with one bulk reduction (`cp.reduce.async.bulk`, sm_90 and later); the accumulator is
    /// laid out in those pieces, per (batch, head, query block).
    case bulk = 1
    /// As `bulk`, with the pieces staged in the step's own Q/dO buffer (d = 256: a buffer of
    /// their own does not fit beside two Q/dO buffers).
    case bulkInQueryBuffer = 2
  }

  /// The backward key/value kernel's layout for a tile: dQ reduction, Q/dO buffers, k-loop unroll.
  struct BackwardPlan: Equatable {
    var reduction: DQReduction
    var buffers: Int
    var unroll: Int
  }

  /// This key's plan (meaningful for `.backwardKeyValue`).
  var backwardPlan: BackwardPlan {
    Self.backwardPlan(tile: tile, headDim: headDim, headDimV: headDimV, softcap: softcap, arch: arch)
  }

  /// The fastest layout that fits, in the order measured on the H100 (runs 8 and 9 of
  /// docs/perf-notes/cuda-sm80.md): bulk dQ reductions with two Q/dO buffers, then with the
  /// pieces in the Q/dO buffer, then with one buffer; atomics before sm_90. The GEMM k-loops
  /// run two k-steps per iteration with the bulk reductions (0–1% faster, run 8), except with
  /// softcap, whose d = 64 kernels then spill, and past d = 256 (8-76 bytes of spills at 32 x 32).
  static func backwardPlan(
    tile: AttentionTile, headDim: Int, headDimV: Int, softcap: Bool, arch: String
  ) -> BackwardPlan {
    let limit = sharedMemoryLimit(arch: arch)
    func fits(_ buffers: Int, staging: Bool) -> Bool {
      backwardSharedMemory(tile: tile, headDim: headDim, headDimV: headDimV, buffers: buffers, dqStaging: staging) <= limit
    }
    if supportsBulkReduction(arch: arch) {
      let unroll = softcap || max(headDim, headDimV) > maxHeadDim ? 1 : 2
      if fits(2, staging: true) { return BackwardPlan(reduction: .bulk, buffers: 2, unroll: unroll) }
      if fits(2, staging: false) && dqPiecesFitQueryBuffer(tile: tile, headDim: headDim, headDimV: headDimV) {
        return BackwardPlan(reduction: .bulkInQueryBuffer, buffers: 2, unroll: unroll)
      }
      if fits(1, staging: true) { return BackwardPlan(reduction: .bulk, buffers: 1, unroll: unroll) }
    }
    return BackwardPlan(reduction: .atomics, buffers: fits(2, staging: false) ? 2 : 1, unroll: 1)
  }

  /// `cp.reduce.async.bulk` exists from sm_90 on.
  static func supportsBulkReduction(arch: String) -> Bool {
    let digits = arch.dropFirst(3).prefix { $0.isNumber }
    return arch.hasPrefix("sm_") && (Int(digits) ?? 0) >= 90
  }

  /// Whether the warps' dQ pieces fit one Q buffer and one dO buffer (`FA_DQ_BULK 2`).
  static func dqPiecesFitQueryBuffer(tile: AttentionTile, headDim: Int, headDimV: Int) -> Bool {
    let width = paddedTo32(headDim)
    let warpRowsQ = warpRows(rows: tile.blockM, columns: [width], warps: tile.warps)
    let pieceBytes = (tile.blockM / warpRowsQ) * (width / (tile.warps / warpRowsQ)) * 4
    let inQuery = min(tile.warps, tile.blockM * (width + 8) * 2 / pieceBytes)
    return tile.warps - inQuery <= tile.blockM * (paddedTo32(headDimV) + 8) * 2 / pieceBytes
  }

  /// Floats of the dQ accumulator for a `.backwardKeyValue` key: whole padded query blocks
  /// when the bulk reductions lay it out in pieces.
  func dqAccumulatorFloats(batch: Int, seqlenQ: Int, headsQ: Int) -> Int {
    if backwardPlan.reduction == .atomics { return batch * seqlenQ * headsQ * headDim }
    let blocks = (seqlenQ + tile.blockM - 1) / tile.blockM
    return batch * headsQ * blocks * tile.blockM * Self.paddedTo32(headDim)
  }

  /// A forward tile override with Q-in-registers decided for these head dims.
  static func tuned(_ tile: AttentionTile?, headDim: Int, headDimV: Int) -> AttentionTile? {
    guard var tile else { return nil }
    let width = max(paddedTo16(headDim), paddedTo16(headDimV))
    tile.qInRegisters = tile.blockM == 16 * tile.warps && width <= 128
    return tile
  }

  static func paddedTo32(_ value: Int) -> Int { (value + 31) / 32 * 32 }

  /// The forward kernel's shared memory: Q, K and V tiles with 16-byte padded rows (V's
  /// columns padded to whole 16-column tiles per value group).
  static func forwardSharedMemory(tile: AttentionTile, headDim: Int, headDimV: Int, valueGroups: Int = 1) -> Int {
    let qkPitch = paddedTo16(headDim) + 8
    let vPitch = (headDimV + 16 * valueGroups - 1) / (16 * valueGroups) * (16 * valueGroups) + 8
    return (tile.blockM * qkPitch + tile.blockN * qkPitch + tile.blockN * vPitch) * 2
  }

  /// Value groups of a forward over `headDimV` columns: 1 up to 256, else one per 256 columns
  /// (as many as `forwardValueChunks` has chunks).
  package static func forwardValueGroups(headDimV: Int) -> Int {
    (headDimV + forwardValueColumns - 1) / forwardValueColumns
  }

  /// The launches of this forward key over a V of `headDimV` columns, each with the first
  /// column it reads and writes: the key itself where it covers every column (value groups,
  /// or d_v up to 256), else one per `forwardValueChunks` chunk, this key (the first chunk's,
  /// as `make` gives it) with the chunk's width.
  package func forwardLaunches(headDimV: Int) -> [(key: FlashAttention2Key, offset: Int)] {
    if valueGroups > 1 { return [(self, 0)] }
    return Self.forwardValueChunks(headDimV: headDimV).map { chunk in
      var key = self
      key.headDimV = chunk.width
      return (key, chunk.offset)
    }
  }

  /// Heads past 256 need this much shared memory per block (the backward's tile at d = d_v =
  /// 512 with one Q/dO buffer); `takesWideHeads` compares it with an arch's limit.
  static var wideHeadsSharedMemory: Int {
    backwardSharedMemory(tile: wideHeadsTile, headDim: maxWideHeadDim, headDimV: maxWideHeadDim, buffers: 1)
  }

  /// Dynamic shared memory per block that an architecture allows (opt-in maximum).
  static func sharedMemoryLimit(arch: String) -> Int {
    switch arch {
    case "sm_80", "sm_87": return 163 * 1024
    case "sm_86", "sm_89", "sm_120", "sm_121": return 99 * 1024
    default: return 227 * 1024   // sm_90a, sm_100 and later data-center parts
    }
  }

  /// The backward key/value kernel's shared memory: K and V (blockN keys; head dims padded to
  /// 32, rows padded by 8 elements), `buffers` copies of Q and dO (blockM queries), P and dS
  /// (blockM × blockN), then `buffers` copies of LSE and D as floats, then with `dqStaging`
  /// the dQ pieces (blockM × head dim padded to 32, fp32).
  static func backwardSharedMemory(
    tile: AttentionTile, headDim: Int, headDimV: Int, buffers: Int, dqStaging: Bool = false
  ) -> Int {
    let rowHalves = paddedTo32(headDim) + paddedTo32(headDimV) + 16
    let halves = (tile.blockN + buffers * tile.blockM) * rowHalves + 2 * tile.blockM * (tile.blockN + 8)
    let staging = dqStaging ? tile.blockM * paddedTo32(headDim) * 4 : 0
    return halves * 2 + 2 * buffers * tile.blockM * 4 + staging
  }

  /// Whether a backward tile can run: every GEMM's warp grid exists and one buffer fits.
  static func backwardTileFits(_ tile: AttentionTile, headDim: Int, headDimV: Int, arch: String) -> Bool {
    let widths = [paddedTo32(headDim), paddedTo32(headDimV)]
    return warpGridExists(rows: tile.blockM, columns: [tile.blockN], warps: tile.warps)
      && warpGridExists(rows: tile.blockN, columns: widths, warps: tile.warps)
      && warpGridExists(rows: tile.blockM, columns: [widths[0]], warps: tile.warps)
      && backwardSharedMemory(tile: tile, headDim: headDim, headDimV: headDimV, buffers: 1) <= sharedMemoryLimit(arch: arch)
  }

  /// Warp-grid row counts that split `rows` into m16 tiles and each of `columns` (dK and dV
  /// share one grid) into n8 tiles.
  private static func warpRowChoices(rows: Int, columns: [Int], warps: Int) -> [Int] {
    [1, 2, 4, 8].filter { choice in
      warps % choice == 0 && rows % (16 * choice) == 0 && columns.allSatisfy { $0 % (8 * (warps / choice)) == 0 }
    }
  }

  static func warpGridExists(rows: Int, columns: [Int], warps: Int) -> Bool {
    !warpRowChoices(rows: rows, columns: columns, warps: warps).isEmpty
  }

  /// Warps along the rows of a rows × columns GEMM of the backward (warp tiles of whole m16
  /// rows and n8 columns): the smallest warp-tile perimeter, i.e. the fewest fragment loads
  /// per MMA; ties go to more warps along the rows.
  static func warpRows(rows: Int, columns: [Int], warps: Int) -> Int {
    var best = (perimeter: Int.max, rows: 1)
    let width = columns.max() ?? 0
    for choice in warpRowChoices(rows: rows, columns: columns, warps: warps) {
      let perimeter = rows / choice + width / (warps / choice)
      if perimeter <= best.perimeter { best = (perimeter, choice) }
    }
    return best.rows
  }

  /// The backward key/value tile: the first of `TileTables.flashAttention2BackwardCandidates`
  /// that fits this architecture's shared memory.
  package static func backwardTile(headDim: Int, headDimV: Int, arch: String) -> AttentionTile {
    let tiles = TileTables.flashAttention2BackwardCandidates(headDim: headDim, headDimV: headDimV)
    return tiles.first { backwardTileFits($0, headDim: headDim, headDimV: headDimV, arch: arch) } ?? tiles[tiles.count - 1]
  }
}
