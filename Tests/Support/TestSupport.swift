import FlashAttention

/// Deterministic-per-call random data for tests: a fresh seed each call unless one is given,
/// and the seed printed in failure messages so a failure can be replayed.
public struct TestRandom: RandomNumberGenerator, Sendable {
  public private(set) var state: UInt64
  public let seed: UInt64

  public init(seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
    self.seed = seed
    self.state = seed
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Standard normal values (Box–Muller).
  public mutating func normals(_ count: Int) -> [Float] {
    (0..<count).map { _ in
      let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
      let u2 = Double.random(in: 0..<1, using: &self)
      return Float((-2 * u1.logValueForTests).squareRoot() * (2 * Double.pi * u2).cosValueForTests)
    }
  }

  /// A host tensor of standard normal values.
  public mutating func tensor(_ shape: [Int], dtype: DType = .float32) -> HostTensor {
    HostTensor(normals(shape.reduce(1, *)), shape: shape, dtype: dtype)
  }
}

#if canImport(Glibc)
  import Glibc
#endif

extension Double {
  var logValueForTests: Double { log(self) }
  var cosValueForTests: Double { cos(self) }
}
