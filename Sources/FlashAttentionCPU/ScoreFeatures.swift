import FlashAttentionCore
import _FlashAttentionCPUKernels

/// ALiBi and dropout as the CPU kernels take them for one (batch, query head): the slope, and
/// dropout's generator key with the pair's coordinate. Both off cost plain attention nothing but
/// a test per tile (the kernels skip a slope of 0; no dropout factors are made).
struct ScoreFeatures {
  let slope: Float
  let dropout: fa_dropout?

  init(options: AttentionOptions, shape: AttentionShape, batch: Int, head: Int) {
    slope = options.alibiSlopes?.slope(batch: batch, head: head, headsQ: shape.headsQ) ?? 0
    dropout = options.activeDropout.map { drop in
      fa_dropout(
        seed: drop.seed, offset: drop.offset, threshold: drop.keepThreshold,
        batch_head: UInt32(truncatingIfNeeded: (drop.firstBatch + batch) * shape.headsQ + head),
        scale: drop.keptScale, first_query: 0, first_key: 0)
    }
  }

  /// `first_query + seqlen_k − seqlen_q − first_key`: the ALiBi distance of a tile's first pair.
  static func diagonal(shape: AttentionShape, firstQuery: Int, firstKey: Int) -> Int {
    firstQuery + shape.seqlenK - shape.seqlenQ - firstKey
  }

  /// Dropout's factors of a tile into `factors`; false (nothing written) without dropout.
  func dropoutFactors(
    kernels: CPUKernels, into factors: UnsafeMutablePointer<Float>, leading: Int, firstQuery: Int, firstKey: Int,
    rows: Int, columns: Int, keysAreRows: Bool
  ) -> Bool {
    guard var tile = dropout else { return false }
    tile.first_query = firstQuery
    tile.first_key = firstKey
    kernels.table.pointee.dropout_factors(&tile, factors, leading, rows, columns, keysAreRows)
    return true
  }
}
