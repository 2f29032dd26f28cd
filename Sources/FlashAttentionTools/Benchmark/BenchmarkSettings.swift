import Foundation

/// How a benchmark run repeats and reports, shared by the CPU and CUDA runners.
package struct BenchmarkSettings: Sendable {
  /// Timed runs per case (GPU: exactly this many; CPU: at most this many, see `cpuBudgetSeconds`).
  package var repetitions = 20
  /// Untimed runs before timing (module load, compilation, caches, page faults).
  package var warmup = 3
  /// CPU only: timed seconds per case; the run count is `budget / (time of one run)` clamped to
  /// `min(3, repetitions)...repetitions`, so long cases stay affordable on a small machine.
  package var cpuBudgetSeconds = 1.0
  /// One untimed call per case and pass, nothing else (for profilers such as ncu).
  package var once = false
  /// Runs with `AttentionOptions.deterministic` (on the GPU the backward's one-launch-per-key-
  /// block mode); the records name the implementation `flash-deterministic`.
  package var deterministic = false
  /// The probability of the `flash-dropout` implementation (`BenchmarkFeatures`).
  package var dropoutProbability: Float = 0.1
  /// Called after each record (progress on stderr).
  package var progress: (@Sendable (BenchmarkRecord) -> Void)?

  package init() {}

  /// The implementation's name in the records: `flash-deterministic` in the deterministic mode.
  func label(_ impl: String) -> String {
    deterministic && impl == "flash" ? "flash-deterministic" : impl
  }
}

/// Fills host tensors with uniform random values in [-1, 1): never zeros, which can hide
/// unwritten outputs and run faster than real data.
struct BenchmarkRandom {
  private var state: UInt64

  init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

  mutating func next() -> Float {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return Float(Int64(state >> 40) - (1 << 23)) * 0x1p-23
  }

  mutating func fill(_ tensor: HostTensor) {
    let count = tensor.elementCount
    switch tensor.dtype {
    case .float32:
      let values = tensor.storage.assumingMemoryBound(to: Float.self)
      for index in 0..<count { values[index] = next() }
    case .float16:
      let values = tensor.storage.assumingMemoryBound(to: Float16.self)
      for index in 0..<count { values[index] = Float16(next()) }
    case .bfloat16:
      let values = tensor.storage.assumingMemoryBound(to: UInt16.self)
      for index in 0..<count { values[index] = BFloat16Conversion.bits(from: next()) }
    case .float8E4M3:
      let values = tensor.storage.assumingMemoryBound(to: UInt8.self)
      for index in 0..<count { values[index] = Float8E4M3Conversion.bits(from: next()) }
    }
  }

  mutating func tensor(_ shape: [Int], dtype: DType) throws(FlashAttentionError) -> HostTensor {
    let tensor = try HostTensor(shape: shape, dtype: dtype, name: "input \(shape)")
    fill(tensor)
    return tensor
  }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
  var time = timespec()
  clock_gettime(CLOCK_MONOTONIC, &time)
  return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
