/// The sequence lengths of `bench --grid varlen`: lengths drawn uniformly from a range until they
/// add up to a token budget (the last one cut to fit), from a seeded SplitMix64 so the peer
/// script (`benchmarks/peers/torch_sdpa.py --grid varlen`) draws the same mix:
/// `length = lower + next() % (upper - lower + 1)`.
package enum VarlenLengthMix {
  package static let defaultSeed: UInt64 = 2026
  package static let defaultTotal = 16384
  package static let defaultRange = 128...8192

  package static func lengths(
    seed: UInt64 = defaultSeed, totalTokens: Int = defaultTotal, range: ClosedRange<Int> = defaultRange
  ) -> [Int] {
    var state = seed
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    var lengths: [Int] = []
    var remaining = totalTokens
    let span = UInt64(range.upperBound - range.lowerBound + 1)
    while remaining > 0 {
      let length = min(range.lowerBound + Int(next() % span), remaining)
      lengths.append(length)
      remaining -= length
    }
    return lengths
  }

  /// The fixed length with the same attention work per token as `lengths` (Σ L² / Σ L, to a
  /// multiple of 64): the fixed-length batch that `bench --grid varlen` compares with.
  package static func equivalentFixedLength(_ lengths: [Int]) -> Int {
    let tokens = lengths.reduce(0, +)
    guard tokens > 0 else { return 64 }
    let squares = lengths.reduce(0.0) { $0 + Double($1) * Double($1) }
    return max(64, Int((squares / Double(tokens) / 64).rounded()) * 64)
  }
}
