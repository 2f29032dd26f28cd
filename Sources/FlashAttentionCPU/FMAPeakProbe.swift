import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Measures this machine's fused multiply-add peak: the ceiling the benchmark compares the
/// kernels with.
///
/// Every thread runs 12 independent FMA chains on 8-lane vectors (ymm registers, the widest the
/// x86-64-v3 kernels use; 12 chains cover the FMA latency of both pipes), all threads at once.
public enum FMAPeakProbe {
  /// GFLOP/s of `threads` threads together (2 FLOPs per lane per FMA), best of a few rounds of
  /// about 0.1 s each.
  public static func measure(threads: Int) -> Double {
    let pool = WorkerPool.shared(threads: max(1, threads))
    var iterations = 1 << 16
    // Calibrate to about 0.1 s per round.
    while true {
      let seconds = round(pool: pool, iterations: iterations).seconds
      if seconds > 0.02 || iterations > 1 << 30 {
        iterations = Int(Double(iterations) * 0.1 / max(seconds, 1e-6))
        break
      }
      iterations *= 4
    }
    var best = 0.0
    for _ in 0..<3 {
      let result = round(pool: pool, iterations: iterations)
      best = max(best, result.flops / result.seconds / 1e9)
    }
    return best
  }

  private static func round(pool: WorkerPool, iterations: Int) -> (flops: Double, seconds: Double) {
    let threads = pool.threadCount
    let started = Atomic<Int>(0)
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: threads)
    defer { sink.deallocate() }
    let start = now()
    pool.run(tasks: threads) { task, _ in
      // Every task waits until all have started, so each thread runs exactly one.
      started.add(1, ordering: .relaxed)
      while started.load(ordering: .relaxed) < threads {}
      sink[task] = chains(iterations: iterations, seed: Float(task))
    }
    let seconds = now() - start
    return (Double(threads) * Double(iterations) * 12 * 8 * 2, seconds)
  }

  /// 12 independent FMA chains; the result depends on every step, so none is optimized away.
  @inline(never)
  private static func chains(iterations: Int, seed: Float) -> Float {
    typealias Vector = SIMD8<Float>
    let x = Vector(repeating: 0.999_999)
    let y = Vector(repeating: 1e-7 * (seed + 1))
    var a0 = Vector(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3
    var a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7
    var a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
    for _ in 0..<iterations {
      a0 = y.addingProduct(a0, x)
      a1 = y.addingProduct(a1, x)
      a2 = y.addingProduct(a2, x)
      a3 = y.addingProduct(a3, x)
      a4 = y.addingProduct(a4, x)
      a5 = y.addingProduct(a5, x)
      a6 = y.addingProduct(a6, x)
      a7 = y.addingProduct(a7, x)
      a8 = y.addingProduct(a8, x)
      a9 = y.addingProduct(a9, x)
      a10 = y.addingProduct(a10, x)
      a11 = y.addingProduct(a11, x)
    }
    let total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
    return total.sum()
  }

  private static func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
  }
}
