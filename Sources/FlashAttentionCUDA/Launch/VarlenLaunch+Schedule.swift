import FlashAttentionCore
import _FlashAttentionKernelABI

/// The packed schedule of a variable-length batch (`CUDAKernelTuning.VarlenSchedule.packed`):
/// before each Hopper kernel, `flash_varlen_schedule` writes its work list into stream-ordered
/// scratch, one 16-byte entry per grid block; the kernel then takes entry `blockIdx.x` (the
/// forward: entries w, w + gridDim.x, ...) instead of deriving its sequence from the padded grid.
extension VarlenLaunch {
  /// Bytes of one list entry (`VarlenWork`: sequence, head, unit, blocks).
  static let scheduleEntryBytes = 16

  /// Which sequences' rows make the units and which make their cost.
  struct ScheduleSides {
    var cuSeqlens: UInt64
    var seqUsed: UInt64
    var maxRows: Int
    var cuOther: UInt64
    var seqUsedOther: UInt64
    var maxOther: Int
  }

  /// The entries the list needs at most: a sequence of r used rows has ⌈r / blockRows⌉ blocks,
  /// fewer than r / blockRows + 1, so all of them have fewer than totalRows / blockRows + batch
  /// (pairs: half of that plus batch, rounded up); times the heads. nil where the grid would
  /// pass 2^31 - 1 blocks (the padded schedule then runs).
  static func scheduleCapacity(totalRows: Int, batch: Int, blockRows: Int, paired: Bool, heads: Int) -> Int? {
    let blocks = (totalRows + blockRows - 1) / blockRows + batch
    let units = paired ? (blocks + batch) / 2 + 1 : blocks
    let (entries, overflow) = units.multipliedReportingOverflow(by: heads)
    return overflow || entries > Int(Int32.max) || entries == 0 ? nil : entries
  }

  /// Queues `flash_varlen_schedule` writing `capacity` entries at `address`.
  static func writeSchedule(
    at address: UInt64, capacity: Int, sides: ScheduleSides, batch: Int, heads: Int, blockRows: Int, paired: Bool,
    device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let parameters = FAVarlenScheduleParams(
      work: deviceMutablePointer(address), cu_seqlens: devicePointer(sides.cuSeqlens),
      seqused: devicePointer(sides.seqUsed), cu_other: devicePointer(sides.cuOther),
      seqused_other: devicePointer(sides.seqUsedOther), batch: Int32(batch), heads: Int32(heads),
      block_rows: Int32(blockRows), paired: paired ? 1 : 0, max_rows: Int32(sides.maxRows),
      max_other: Int32(sides.maxOther), capacity: Int32(capacity), padding: 0)
    let key = VarlenScheduleKey(arch: device.arch)
    try device.loadedKernel(key).launch(
      grid: (1, 1, 1), block: (key.threads, 1, 1), parameters: parameters, stream: stream)
  }

  /// The query side as the units (forward, dQ kernel), the keys as their cost.
  static func querySides(_ index: VarlenIndexAddresses, shape: AttentionShape) -> ScheduleSides {
    ScheduleSides(
      cuSeqlens: index.cuSeqlensQ, seqUsed: index.seqUsedQ, maxRows: shape.seqlenQ, cuOther: index.cuSeqlensK,
      seqUsedOther: index.seqUsedK, maxOther: shape.seqlenK)
  }

  /// The key side as the units (the backward's key/value kernel), the queries as their cost.
  static func keySides(_ index: VarlenIndexAddresses, shape: AttentionShape) -> ScheduleSides {
    ScheduleSides(
      cuSeqlens: index.cuSeqlensK, seqUsed: index.seqUsedK, maxRows: shape.seqlenK, cuOther: index.cuSeqlensQ,
      seqUsedOther: index.seqUsedQ, maxOther: shape.seqlenQ)
  }
}
