@testable import FlashAttentionCPU
import FlashAttentionCore
import Testing

@Suite("CPU forward with V packed into panels")
struct ValuePanelTests {
  /// Layouts whose V rows are a multiple of 4 KiB apart, which the forward pass copies into
  /// column panels (16 wide, or 32 in the AVX-512 build) instead of reading in place: odd lengths (a partial last key tile),
  /// causal and window masks (banded P·V on the panels), softcap, GQA, d ≠ d_v.
  static let cases = [
    AttentionCase(seqlenQ: 130, seqlenK: 200, headsQ: 8, headsKV: 8, headDim: 128),
    AttentionCase(
      seqlenQ: 193, seqlenK: 193, headsQ: 16, headsKV: 8, headDim: 48, headDimV: 128,
      options: AttentionOptions(causal: true)),
    AttentionCase(
      seqlenQ: 150, seqlenK: 150, headsQ: 16, headsKV: 16, headDim: 64,
      options: AttentionOptions(window: SlidingWindow(left: 40, right: 7), softcap: 5)),
    AttentionCase(seqlenQ: 97, seqlenK: 290, headsQ: 32, headsKV: 32, headDim: 32, threads: 3),
    // Width 48: in the AVX-512 build a 32-column panel and a last 16-column one.
    AttentionCase(seqlenQ: 70, seqlenK: 150, headsQ: 64, headsKV: 64, headDim: 48, options: AttentionOptions(causal: true)),
  ]

  @Test("matches the float64 reference", arguments: cases)
  func matchesReference(_ c: AttentionCase) throws {
    // The case must take the panel path, or this test checks nothing new.
    let probe = HostTensor(shape: [1, 1, 1, 1], dtype: .float32)
    let v = TensorView(baseAddress: probe.storage, dtype: .float32, shape: c.shape.vShape)
    #expect(HeadRows(v, batch: 0, head: 0).rowsShareOneL1Set)
    try expectMatchesReference(c, backward: false)
  }
}
