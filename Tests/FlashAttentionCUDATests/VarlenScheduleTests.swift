import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// The host side of the packed varlen schedule (no GPU): the list's size bounds every batch the
/// schedule kernel can describe, and the scratch it packs.
@Suite("Varlen packed schedule sizes (no GPU)")
struct VarlenScheduleTests {
  /// The entries `flash_varlen_schedule` writes for these lengths (before its -1 tail).
  static func units(_ lengths: [Int], blockRows: Int, paired: Bool) -> Int {
    lengths.reduce(0) { sum, length in
      let blocks = (length + blockRows - 1) / blockRows
      return sum + (paired ? (blocks + 1) / 2 : blocks)
    }
  }

  @Test("the list's capacity holds every unit of random batches, pairs and blocks, at every tile height")
  func capacityBoundsUnits() throws {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next(_ bound: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((state >> 33) % UInt64(bound))
    }
    for _ in 0..<500 {
      let batch = 1 + next(40)
      let lengths = (0..<batch).map { _ in next(4) == 0 ? 0 : next(3000) }
      let total = lengths.reduce(0, +) + next(5)
      let heads = 1 + next(8)
      for blockRows in [64, 128, 192] {
        for paired in [false, true] {
          let capacity = try #require(
            VarlenLaunch.scheduleCapacity(
              totalRows: total, batch: batch, blockRows: blockRows, paired: paired, heads: heads))
          let needed = Self.units(lengths, blockRows: blockRows, paired: paired) * heads
          #expect(capacity >= needed, "lengths \(lengths) rows \(blockRows) paired \(paired): \(capacity) < \(needed)")
          // At most about batch entries per head past the real ones (blocks that exit at once).
          #expect(capacity - needed <= (2 * batch + 2) * heads)
        }
      }
    }
    // A grid past 2^31 - 1 blocks falls back to the padded schedule.
    #expect(
      VarlenLaunch.scheduleCapacity(totalRows: 1 << 29, batch: 1, blockRows: 64, paired: false, heads: 65535) == nil)
  }

  @Test("packed backward scratch: total_q rows per head instead of batch x max_seqlen_q")
  func packedScratchLayout() throws {
    let shape = AttentionShape(batch: 7, seqlenQ: 7204, headsQ: 32, headDim: 64)
    let fusedKey = try #require(HopperBackwardKey(headDim: 64, dtype: .bfloat16, mask: .none, skipDQ: false))
    let convert = FlashAttention2Key.make(
      kind: .backwardConvert, headDim: 64, headDimV: 64, dtype: .bfloat16, masked: false, softcap: false,
      deterministic: false, arch: "sm_90a", tuning: CUDAKernelTuning(), varlen: true)
    let preprocess = FlashAttention2Key.make(
      kind: .backwardPreprocess, headDim: 64, headDimV: 64, dtype: .bfloat16, masked: false, softcap: false,
      deterministic: false, arch: "sm_90a", tuning: CUDAKernelTuning(), varlen: true)
    let plan = BackwardKernelPlan(preprocess: preprocess, form: .hopperFused(keyValue: fusedKey, convert: convert))
    #expect(VarlenLaunch.packsScratch(plan: plan, schedule: .packed))
    #expect(!VarlenLaunch.packsScratch(plan: plan, schedule: .padded))
    let padded = BackwardScratch.Layout(plan: plan, shape: shape)
    let packed = BackwardScratch.Layout(plan: plan, shape: shape, packedRows: 16384)
    #expect(padded.statsRows == 7 * 7204 * 32)
    #expect(packed.statsRows == 16384 * 32)
    #expect(packed.accumulatorFloats == 16384 * 32 * 64)
    #expect(padded.accumulatorFloats == 7 * 7204 * 32 * 64)
    #expect(packed.accumulatorOffset >= 2 * packed.statsRows * 4 && packed.accumulatorOffset % 256 == 0)
  }
}
