import FlashAttention

/// Deterministic-per-call random data for tests: a fresh seed each call unless one is given,
/// and the seed printed in failure messages so a failure can be replayed. The numbers come from
/// the library's `VerificationRandom`, the generator `verify` uses.
package struct TestRandom: RandomNumberGenerator, Sendable {
  package let seed: UInt64
  private var generator: VerificationRandom

  package init(seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
    self.seed = seed
    self.generator = VerificationRandom(seed: seed)
  }

  package mutating func next() -> UInt64 { generator.next() }

  /// Standard normal values.
  package mutating func normals(_ count: Int) -> [Float] {
    (0..<count).map { _ in generator.normal() }
  }

  /// A host tensor of standard normal values.
  package mutating func tensor(_ shape: [Int], dtype: DType = .float32) -> HostTensor {
    generator.tensor(shape, dtype: dtype)
  }
}
