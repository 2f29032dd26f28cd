import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Measures this machine's fused multiply-add peak: the ceiling the benchmark compares the
/// kernels with.
///
/// Every thread runs the kernels' `fma_chains` loop (C, compiled for the chosen instruction set):
/// 24 independent FMA chains of zmm vectors on AVX-512 (12 of ymm on AVX2), more than two FMA
/// pipes of 4-cycle latency need (8), so neither the latency nor the chain count limits the rate
/// on the machines we know (on the Intel Xeon of docs/perf-notes/cpu.md, session 6, 12 to 28
/// zmm chains all read 176 GFLOP/s per core).
///
/// Other processes only ever slow a round down, so the rate is the best of many short rounds:
/// on a shared machine a few rounds of 0.1 s read half the peak when a neighbour held a core.
package enum FMAPeakProbe {
  /// GFLOP/s of `threads` threads together (2 FLOPs per lane per FMA), best of 12 rounds of
  /// about 0.05 s each.
  ///
  /// - Parameter instructionSet: whose vectors to time; the default is what `CPUBackend` picks.
  ///   An instruction set this CPU cannot run measures `.avx2` instead.
  /// - Returns: GFLOP/s, or 0 on a CPU that can run neither build (nothing is executed there).
  package static func measure(threads: Int, instructionSet: CPUInstructionSet = .preferred) -> Double {
    guard let kernels = CPUKernels(instructionSet) ?? CPUKernels(.avx2) else { return 0 }
    let pool = WorkerPool.shared(threads: min(max(1, threads), CPUThreadCount.maximum))
    var iterations = 1 << 16
    // Calibrate to about 0.05 s per round.
    while true {
      let seconds = round(pool: pool, iterations: iterations, kernels: kernels).seconds
      if seconds > 0.02 || iterations > 1 << 30 {
        iterations = Int(Double(iterations) * 0.05 / max(seconds, 1e-6))
        break
      }
      iterations *= 4
    }
    var best = 0.0
    for _ in 0..<12 {
      let result = round(pool: pool, iterations: iterations, kernels: kernels)
      best = max(best, result.flops / result.seconds / 1e9)
    }
    return best
  }

  private static func round(
    pool: WorkerPool, iterations: Int, kernels: CPUKernels
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
      sink[task] = kernels.table.pointee.fma_chains(Int64(iterations), Float(task))
    }
    let seconds = now() - start
    let table = kernels.table.pointee
    let flopsPerIteration = Double(table.fma_chain_count) * Double(table.lanes) * 2
    return (Double(threads) * Double(iterations) * flopsPerIteration, seconds)
  }

  private static func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
  }
}
