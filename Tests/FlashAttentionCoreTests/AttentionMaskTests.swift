import FlashAttentionCore
import Testing

@Suite("AttentionMask: bottom-right aligned causal and sliding windows")
struct AttentionMaskTests {
  @Test("causal with seqlen_q < seqlen_k: row i sees keys 0 ... i + sk - sq")
  func causalShortQueries() {
    let mask = AttentionMask(options: AttentionOptions(causal: true), seqlenQ: 3, seqlenK: 5)
    #expect(mask.visibleKeys(forQuery: 0) == 0..<3)
    #expect(mask.visibleKeys(forQuery: 2) == 0..<5)
  }

  @Test("causal with seqlen_q > seqlen_k: the first rows see no key")
  func causalLongQueries() {
    let mask = AttentionMask(options: AttentionOptions(causal: true), seqlenQ: 5, seqlenK: 2)
    #expect(mask.visibleKeys(forQuery: 0).isEmpty)
    #expect(mask.visibleKeys(forQuery: 2).isEmpty)
    #expect(mask.visibleKeys(forQuery: 3) == 0..<1)
    #expect(mask.visibleKeys(forQuery: 4) == 0..<2)
  }

  @Test("window (left, right) around the shifted diagonal, clamped to the keys")
  func window() {
    let options = AttentionOptions(window: SlidingWindow(left: 2, right: 1))
    let mask = AttentionMask(options: options, seqlenQ: 4, seqlenK: 6)
    // offset = 2: row 0 sees 0 ... 3, row 3 sees 3 ... 6 clamped to 5.
    #expect(mask.visibleKeys(forQuery: 0) == 0..<4)
    #expect(mask.visibleKeys(forQuery: 3) == 3..<6)
  }

  @Test("causal plus a window keeps the left bound and a right bound of 0")
  func causalWindow() {
    let options = AttentionOptions(causal: true, window: SlidingWindow(left: 1, right: nil))
    let mask = AttentionMask(options: options, seqlenQ: 4, seqlenK: 4)
    #expect(mask.visibleKeys(forQuery: 0) == 0..<1)
    #expect(mask.visibleKeys(forQuery: 3) == 2..<4)
  }

  @Test("FlashAttention's integer window convention: negative means unbounded")
  func integerConvention() {
    let window = SlidingWindow(flashAttentionLeft: -1, right: 3)
    #expect(window.left == nil)
    #expect(window.right == 3)
  }

  @Test("visibleScoreCount counts exactly the visible pairs")
  func visibleScores() {
    let mask = AttentionMask(options: AttentionOptions(causal: true), seqlenQ: 7, seqlenK: 7)
    #expect(mask.visibleScoreCount == 28)
  }
}
