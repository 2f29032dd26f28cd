import Synchronization
import _FlashAttentionCPURuntime
import _FlashAttentionCPUKernels
import _FlashAttentionCPUKernelsAVX512

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Measures this machine's fused multiply-add peak: the ceiling the benchmark compares the
/// kernels with.
///
/// Every thread runs 12 independent FMA chains on the widest vectors the chosen kernels use
/// (ymm for `.avx2`, zmm for `.avx512`; 12 chains cover the FMA latency of both pipes), all
/// threads at once.
public enum FMAPeakProbe {
  /// GFLOP/s of `threads` threads together (2 FLOPs per lane per FMA), best of a few rounds of
  /// about 0.1 s each.
  ///
  /// - Parameter instructionSet: whose vectors to time; the default is what `CPUBackend` picks.
  ///   An instruction set this CPU cannot run measures `.avx2` instead.
  /// - Returns: GFLOP/s, or 0 on a CPU that can run neither build (nothing is executed there).
  public static func measure(threads: Int, instructionSet: CPUInstructionSet = .preferred) -> Double {
    let supported = CPUInstructionSet.supported
    if supported.isEmpty { return 0 }
    let isa = supported.contains(instructionSet) ? instructionSet : .avx2
    let pool = WorkerPool.shared(threads: max(1, threads))
    var iterations = 1 << 16
    // Calibrate to about 0.1 s per round.
    while true {
      let seconds = round(pool: pool, iterations: iterations, isa: isa).seconds
      if seconds > 0.02 || iterations > 1 << 30 {
        iterations = Int(Double(iterations) * 0.1 / max(seconds, 1e-6))
        break
      }
      iterations *= 4
    }
    var best = 0.0
    for _ in 0..<3 {
      let result = round(pool: pool, iterations: iterations, isa: isa)
      best = max(best, result.flops / result.seconds / 1e9)
    }
    return best
  }

  private static func round(
    pool: WorkerPool, iterations: Int, isa: CPUInstructionSet
  ) -> (flops: Double, seconds: Double) {
    let threads = pool.threadCount
    let started = Atomic<Int>(0)
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: threads)
    defer { sink.deallocate() }
    let start = now()
    pool.run(tasks: threads) { task, _ in
      // Every task waits until all have started, so each thread runs exactly one.
      started.add(1, ordering: .relaxed)
      while started.load(ordering: .relaxed) < threads {}
      switch isa {
      case .avx2: sink[task] = _FlashAttentionCPUKernels.FMAChains.run(iterations: iterations, seed: Float(task))
      case .avx512: sink[task] = _FlashAttentionCPUKernelsAVX512.FMAChains.run(iterations: iterations, seed: Float(task))
      }
    }
    let seconds = now() - start
    let lanes = isa == .avx512 ? _FlashAttentionCPUKernelsAVX512.FMAChains.lanes : _FlashAttentionCPUKernels.FMAChains.lanes
    return (Double(threads) * Double(iterations) * 12 * Double(lanes) * 2, seconds)
  }

  private static func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
  }
}
