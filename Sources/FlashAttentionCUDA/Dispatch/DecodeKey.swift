import FlashAttentionCore

/// The specialization of the KV-cache decode kernel (`Kernels/decode/decode.cu`): head dims,
/// dtype, mask and softcap flags, the cache's layout, and the tile (`DecodeTile`). Batch, query
/// tokens, heads, sequence lengths, page size, strides and the split count are kernel
/// arguments, so one compile serves every size.
package struct DecodeKey: CUDAKernelKey {
  package var headDim: Int
  package var headDimV: Int
  /// `.float16` or `.bfloat16`.
  package var dtype: DType
  /// Causal or sliding window (aligned to the end of each sequence's keys).
  package var masked: Bool
  package var softcap: Bool
  /// Paged cache (page table) rather than contiguous rows.
  package var paged: Bool
  package var tile: DecodeTile
  package var arch: String
  /// How K and V reach shared memory (`.bulk` only where it runs on `arch`).
  package var loader: DecodeLoader

  package init(
    headDim: Int, headDimV: Int, dtype: DType, masked: Bool, softcap: Bool, paged: Bool, tile: DecodeTile,
    arch: String, loader: DecodeLoader = .cpAsync
  ) {
    self.headDim = headDim
    self.headDimV = headDimV
    self.dtype = dtype
    self.masked = masked
    self.softcap = softcap
    self.paged = paged
    self.tile = tile
    self.arch = arch
    self.loader = loader
  }

  /// Padded head-dim columns in shared memory: whole m16n8k16 steps.
  static func padded(_ value: Int) -> Int { (value + 15) / 16 * 16 }

  /// Shared memory: the packed Q rows and every warp's K/V ring (rows padded by 8 elements),
  /// or, if larger, the fp32 merge of the warps' O, max and sum that reuses them at the end;
  /// then, for the bulk loader, the stages' mbarriers (16-byte aligned, past both).
  package var sharedMemoryBytes: Int {
    Self.sharedMemory(headDim: headDim, headDimV: headDimV, tile: tile, loader: loader)
  }

  static func sharedMemory(headDim: Int, headDimV: Int, tile: DecodeTile, loader: DecodeLoader = .cpAsync) -> Int {
    let data = sharedMemoryData(headDim: headDim, headDimV: headDimV, tile: tile)
    let barriers = loader.barrierBytes(tile: tile)
    return barriers == 0 ? data : (data + 15) / 16 * 16 + barriers
  }

  private static func sharedMemoryData(headDim: Int, headDimV: Int, tile: DecodeTile) -> Int {
    let rows = tile.rows
    let kPitch = padded(headDim) + 8
    let vPitch = padded(headDimV) + 8
    let streaming = (rows * kPitch + tile.warps * tile.stages * DecodeTile.keysPerTile * (kPitch + vPitch)) * 2
    let merge = (tile.warps * rows * padded(headDimV) + 2 * tile.warps * rows) * 4
    return max(streaming, merge)
  }

  package var threads: Int { tile.warps * 32 }
  package var family: CUDAKernelFamily { .flashAttention2 }

  package var description: String {
    var text = "decode d=\(headDim)"
    if headDimV != headDim { text += " dv=\(headDimV)" }
    text += " \(dtype == .bfloat16 ? "bf16" : "fp16") \(paged ? "paged" : "contiguous") \(tile)"
    if masked { text += " masked" }
    if softcap { text += " softcap" }
    if loader != .cpAsync { text += " \(loader.rawValue)" }
    return text + " \(arch)"
  }

  package var program: CUDAProgram {
    let defines = [
      "FA_D \(headDim)", "FA_DV \(headDimV)", "FA_BF16 \(dtype == .bfloat16 ? 1 : 0)", "FA_MASK \(masked ? 2 : 0)",
      "FA_SOFTCAP \(softcap ? 1 : 0)", "FA_PAGED \(paged ? 1 : 0)", "FA_WARPS \(tile.warps)",
      "FA_STAGES \(tile.stages)", "FA_MT \(tile.mTiles)", "FA_BULK \(loader == .bulk ? 1 : 0)",
      "FA_LINES \(loader == .cpAsyncLines ? 1 : 0)", "FA_SWAP \(tile.swapped ? 1 : 0)",
    ]
    let header = defines.map { "#define \($0)\n" }.joined()
    return CUDAProgram(entry: "flash_decode", source: header + KernelSources.text("decode/decode.cu"))
  }
}

/// The decode kernel's tile: warps per CTA (each streams its own keys), the depth of each warp's
/// ring of 16-key stages, and m16 tiles of packed query rows per CTA, or, `swapped`, one block
/// of 8 rows with the GEMMs' operands swapped (the keys as the MMA's M, the rows as its N:
/// `Kernels/decode/swapped_warp.cuh`).
package struct DecodeTile: Hashable, Sendable, CustomStringConvertible {
  /// Keys per stage of a warp's ring (one m16n8k16 step of P V).
  package static let keysPerTile = 16
  /// Packed rows of a swapped tile (the MMA's N).
  package static let swappedRows = 8

  package var warps: Int
  package var stages: Int
  package var mTiles: Int
  package var swapped: Bool

  package init(warps: Int, stages: Int, mTiles: Int, swapped: Bool = false) {
    self.warps = warps
    self.stages = stages
    self.mTiles = swapped ? 1 : mTiles
    self.swapped = swapped
  }

  /// Packed query rows (token × query head of a group) per CTA.
  package var rows: Int { swapped ? Self.swappedRows : 16 * mTiles }

  package var description: String { "\(rows)r/\(warps)w/\(stages)s" }
}

/// A decode tile override for tuning runs (`--decode-tile WARPSxSTAGES[+m16]`); the rows still
/// follow the call: the swapped 8-row tile where they fit, unless `+m16` keeps the m16 tiles.
package struct DecodeTuning: Hashable, Sendable {
  package var warps: Int
  package var stages: Int
  /// Keep m16 tiles of rows even for at most 8 rows (the layout before the swapped tile).
  package var keepsM16: Bool

  package init(warps: Int, stages: Int, keepsM16: Bool = false) {
    self.warps = warps
    self.stages = stages
    self.keepsM16 = keepsM16
  }

  /// Parses `WARPSxSTAGES` (e.g. `4x3`), optionally `+m16`: 1, 2, 4 or 8 warps, 2 to 8 stages.
  package init?(parsing text: String) {
    var body = Substring(text)
    let keepsM16 = body.hasSuffix("+m16")
    if keepsM16 { body = body.dropLast(4) }
    let parts = body.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    guard parts.count == 2, let warps = parts[0], let stages = parts[1], [1, 2, 4, 8].contains(warps),
      (2...8).contains(stages)
    else { return nil }
    self.init(warps: warps, stages: stages, keepsM16: keepsM16)
  }
}
