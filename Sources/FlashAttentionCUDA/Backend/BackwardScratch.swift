import FlashAttentionCore

/// The fp32 scratch of one backward call: LSE in log2 units and D = rowsum(dO ∘ O) per query
/// row, then the dQ accumulator (256-byte aligned: the bulk reductions need 16 bytes), laid out
/// for the key/value kernel of the plan.
struct BackwardScratch {
  /// Bytes, and the accumulator's byte offset and float count, for a plan and a shape.
  struct Layout {
    var bytes: Int
    var accumulatorOffset: Int
    var accumulatorFloats: Int

    /// Rows of LSE2 (and of D) in all.
    var statsRows: Int

    /// `packedRows`: a packed variable-length batch's total query rows when the Hopper kernels
    /// keep each sequence at its own rows (`VarlenLaunch.packsScratch`), instead of
    /// `shape.seqlenQ` (the longest sequence's) rows per batch entry.
    init(plan: BackwardKernelPlan, shape: AttentionShape, packedRows: Int? = nil) {
      let queryRows = packedRows ?? shape.batch * shape.seqlenQ
      statsRows = queryRows * shape.headsQ
      switch plan.form {
      case let .flashAttention2(keyValue, _):
        accumulatorFloats = keyValue.dqAccumulatorFloats(batch: shape.batch, seqlenQ: shape.seqlenQ, headsQ: shape.headsQ)
      case let .hopperFused(keyValue, _):
        if keyValue.dqBulk {
          // Whole 64-row query blocks of pieces (the bulk reductions add padded rows too).
          let blocks = (shape.seqlenQ + HopperBackwardKey.blockM - 1) / HopperBackwardKey.blockM
          accumulatorFloats = shape.batch * shape.headsQ * blocks * HopperBackwardKey.blockM * shape.headDim
        } else {
          accumulatorFloats = queryRows * shape.headsQ * shape.headDim
        }
      case .hopperSplit:
        accumulatorFloats = 0
      }
      accumulatorOffset = (2 * statsRows * 4 + 255) / 256 * 256
      bytes = accumulatorOffset + accumulatorFloats * 4
    }
  }

  let lse2: UInt64
  let delta: UInt64
  let accumulator: UInt64
  let accumulatorFloats: Int

  /// The scratch at `address` (at least `layout.bytes`, 256-byte aligned).
  init(address: UInt64, layout: Layout, shape: AttentionShape) {
    lse2 = address
    delta = address + UInt64(layout.statsRows * 4)
    accumulator = address + UInt64(layout.accumulatorOffset)
    accumulatorFloats = layout.accumulatorFloats
  }
}
