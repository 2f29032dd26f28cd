import FlashAttentionTestSupport
import Testing

/// The varlen benchmark's length mix: the Swift and Python (`benchmarks/peers/torch_sdpa.py
/// --grid varlen`) generators must draw the same lengths from the same seed.
@Suite("Varlen benchmark length mix")
struct VarlenLengthMixTests {
  @Test("lengths fill the token budget within the range, the same as the peer script's")
  func lengthMix() {
    let lengths = VarlenLengthMix.lengths()
    #expect(lengths.reduce(0, +) == VarlenLengthMix.defaultTotal)
    #expect(lengths.dropLast().allSatisfy { VarlenLengthMix.defaultRange.contains($0) })
    #expect(lengths.allSatisfy { $0 >= 1 && $0 <= VarlenLengthMix.defaultRange.upperBound })
    // What torch_sdpa.py's varlen_lengths(2026) prints (checked with python3 on 2026-12-06).
    #expect(lengths == [1519, 294, 4972, 1364, 7204, 707, 324])
    #expect(VarlenLengthMix.lengths(seed: 7) != lengths)
    // Σ L² / Σ L = 4990.6 tokens of work per token, to a multiple of 64.
    #expect(VarlenLengthMix.equivalentFixedLength(lengths) == 4992)
  }
}
