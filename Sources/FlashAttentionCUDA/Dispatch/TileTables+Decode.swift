/// The decode kernel's tiles and split counts (KV-cache attention, `Kernels/decode/decode.cu`).
///
/// Decoding reads every K and V row of a sequence once for a handful of query rows, so it is
/// bound by memory bandwidth: what matters is bytes in flight on every SM (an H100 needs about
/// 3.35 TB/s × ~1 µs of latency / 132 SMs ≈ 25 KB per SM) and every SM busy. Each warp keeps
/// `stages - 1` tiles of 16 keys in flight (d = 128: 16 × 512 B = 8 KB per tile of K and V), so
/// the table fills the shared memory of two CTAs per SM with the deepest rings that fit.
/// Not yet measured on a GPU: the tiles and the split rule follow from these counts and from
/// FlashAttention-2's split heuristic; `--decode-tile` overrides the tile for tuning runs.
extension TileTables {
  /// Shared memory one SM holds, by architecture (what `decodeTile` packs two CTAs into).
  static func sharedMemoryPerMultiprocessor(arch: String) -> Int {
    switch arch {
    case "sm_80", "sm_87": return 164 * 1024
    case "sm_86", "sm_89", "sm_120", "sm_121": return 100 * 1024
    default: return 228 * 1024  // sm_90a, sm_100 and later data-center parts
    }
  }

  /// CTAs of `bytes` shared memory (and 128-256 threads) that one SM runs at once.
  static func decodeCTAsPerMultiprocessor(sharedMemoryBytes bytes: Int, arch: String) -> Int {
    // 1 KiB per CTA is reserved by the system; registers allow 3 CTAs of 4 warps at 168 each.
    max(1, min(3, sharedMemoryPerMultiprocessor(arch: arch) / (bytes + 1024)))
  }

  /// The tile for head dims (d, d_v) and `rows` packed query rows (query tokens × the GQA group):
  /// the swapped 8-row tile for at most 8 rows (decoding with GQA groups up to 8), one m16 tile
  /// of rows up to 16, two otherwise up to d_v = 128 (fewer passes over the keys for
  /// speculative decoding and prefill); four warps with the deepest ring (at most 6 stages) that
  /// lets two CTAs share an SM, else fewer warps, else one CTA per SM.
  static func decodeTile(
    headDim: Int, headDimV: Int, rows: Int, arch: String, override: DecodeTuning? = nil, loader: DecodeLoader = .cpAsync
  ) -> DecodeTile {
    let wide = max(DecodeKey.padded(headDim), DecodeKey.padded(headDimV)) > 128
    let mTiles = rows <= 16 || wide ? 1 : 2
    let swapped = rows <= DecodeTile.swappedRows && override?.keepsM16 != true
    if let override {
      return DecodeTile(warps: override.warps, stages: override.stages, mTiles: mTiles, swapped: swapped)
    }
    let limit = FlashAttention2Key.sharedMemoryLimit(arch: arch)
    for budget in [min(limit, sharedMemoryPerMultiprocessor(arch: arch) / 2 - 1024), limit] {
      for warps in [4, 2, 1] {
        for stages in stride(from: 6, through: 2, by: -1) {
          let tile = DecodeTile(warps: warps, stages: stages, mTiles: mTiles, swapped: swapped)
          if DecodeKey.sharedMemory(headDim: headDim, headDimV: headDimV, tile: tile, loader: loader) <= budget {
            return tile
          }
        }
      }
    }
    return DecodeTile(warps: 1, stages: 2, mTiles: 1, swapped: swapped)
  }

  /// The number of key splits for a decode launch of `blocks` CTAs per split (batch × kv heads ×
  /// row blocks) over `keys` keys: FlashAttention-2's rule (`num_splits_heuristic`) with the
  /// slots of this GPU (SMs × CTAs per SM): no split when the blocks already fill 80 % of the
  /// slots; else the fewest splits whose last wave is at least 95 % of the best such fill
  /// (memory-bound: an SM with one CTA fewer idles its share of the bandwidth), each split
  /// keeping at least two tiles per warp, at most `maxSplits`.
  static func decodeSplits(blocks: Int, keys: Int, warps: Int, slots: Int) -> Int {
    if blocks <= 0 || Double(blocks) >= 0.8 * Double(slots) { return 1 }
    let chunks = max(1, (keys + DecodeTile.keysPerTile - 1) / DecodeTile.keysPerTile / (2 * warps))
    let limit = min(maxAutomaticDecodeSplits, slots, chunks)
    if limit <= 1 { return 1 }
    func efficiency(_ splits: Int) -> Double {
      let waves = Double(blocks * splits) / Double(slots)
      return waves / waves.rounded(.up)
    }
    // A split count that gives no split fewer chunks than one fewer split would is no better.
    func eligible(_ splits: Int) -> Bool {
      splits == 1 || (chunks + splits - 1) / splits != (chunks + splits - 2) / (splits - 1)
    }
    let best = (1...limit).filter(eligible).map(efficiency).max() ?? 1
    return (1...limit).first { eligible($0) && efficiency($0) >= 0.95 * best } ?? 1
  }

  /// The most splits of one decode call (the partial outputs grow with it); a caller's larger
  /// `num_splits` is capped here.
  static let maxDecodeSplits = 128

  /// The most splits the automatic choice takes. Measured on the H100 (2026-12-06 05:24 call,
  /// `docs/perf-notes/cuda-decode.md`): at batch 1 (8 kv heads), 16 splits beat the 32 that
  /// fill one wave (8k: 36.2 vs 38.6 µs, 32k: 81.2 vs 88.2, 128k: 253.4 vs 270.5), because
  /// each split adds a partial row to merge; 64 was slower still.
  static let maxAutomaticDecodeSplits = 16
}
