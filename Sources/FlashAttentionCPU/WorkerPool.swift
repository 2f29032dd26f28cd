import Synchronization
import _CPUFeatureShims

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Persistent worker threads that run `tasks` numbered jobs, pulled from a shared counter.
///
/// `concurrentPerform`-style fork/join costs microseconds per call; these workers spin briefly
/// on a generation counter after each job (then sleep on a condition variable), so a short call
/// starts in well under a microsecond when calls come back to back. The caller runs tasks too
/// and waits only for tasks that a worker has claimed, never for a worker to wake up: on a
/// loaded machine a sleeping worker may take milliseconds to be scheduled, and by then the
/// caller has done its work alone. Each worker also owns a scratch buffer that lives across
/// calls, so kernels allocate nothing per call.
package final class WorkerPool: @unchecked Sendable {
  /// Workers including the calling thread.
  package let threadCount: Int

  private let generation = Atomic<Int>(0)
  private let current = Mutex<Job?>(nil)
  private let sleepLock: UnsafeMutablePointer<pthread_mutex_t>
  private let wake: UnsafeMutablePointer<pthread_cond_t>
  /// Serializes callers: one job at a time.
  private let callerLock = Mutex<Void>(())
  private let scratch: [ScratchBuffer]

  private static let pools = Mutex<[Int: WorkerPool]>([:])

  /// One call's tasks. A worker that wakes late may still hold it after the call returned; it
  /// then finds no task left to claim and never touches `body`.
  private final class Job: @unchecked Sendable {
    let count: Int
    let body: UnsafePointer<(Int, Int) -> Void>
    let next = Atomic<Int>(0)
    let finished = Atomic<Int>(0)

    init(count: Int, body: UnsafePointer<(Int, Int) -> Void>) {
      self.count = count
      self.body = body
    }

    func drain(worker: Int) {
      while true {
        let task = next.add(1, ordering: .relaxed).oldValue
        if task >= count { return }
        body.pointee(task, worker)
        finished.add(1, ordering: .releasing)
      }
    }
  }

  /// The process-wide pool with `threads` threads (created on first use, kept for reuse).
  package static func shared(threads: Int) -> WorkerPool {
    pools.withLock { pools in
      if let pool = pools[threads] { return pool }
      let pool = WorkerPool(threads: threads)
      pools[threads] = pool
      return pool
    }
  }

  private init(threads: Int) {
    threadCount = max(1, threads)
    sleepLock = .allocate(capacity: 1)
    sleepLock.initialize(to: pthread_mutex_t())
    pthread_mutex_init(sleepLock, nil)
    wake = .allocate(capacity: 1)
    wake.initialize(to: pthread_cond_t())
    pthread_cond_init(wake, nil)
    scratch = (0..<threadCount).map { _ in ScratchBuffer() }
    for worker in 1..<max(threadCount, 1) {
      let context = Unmanaged.passRetained(WorkerStart(pool: self, index: worker)).toOpaque()
      var thread = pthread_t()
      let status = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
        start.pool.workerLoop(index: start.index)
        return nil
      }, context)
      if status == 0 { pthread_detach(thread) }
    }
  }

  /// Runs `body(task, worker)` for every task in `0..<tasks`; `worker` is in `0..<threadCount`
  /// and identifies the thread (for its scratch buffer). Returns when every task has finished.
  package func run(tasks: Int, _ body: (Int, Int) -> Void) {
    if tasks <= 0 { return }
    callerLock.withLock { _ in
      if threadCount == 1 || tasks == 1 {
        for task in 0..<tasks { body(task, 0) }
        return
      }
      withoutActuallyEscaping(body) { escapable in
        withUnsafePointer(to: escapable) { pointer in
          let job = Job(count: tasks, body: pointer)
          current.withLock { $0 = job }
          generation.add(1, ordering: .releasing)
          pthread_mutex_lock(sleepLock)
          pthread_cond_broadcast(wake)
          pthread_mutex_unlock(sleepLock)
          job.drain(worker: 0)
          while job.finished.load(ordering: .acquiring) < tasks { spinPause() }
          current.withLock { $0 = nil }
        }
      }
    }
  }

  /// The scratch memory of `worker`, at least `bytes` long and 64-byte aligned. Valid until
  /// the same worker asks again; only that worker may use it during a job.
  package func scratch(worker: Int, bytes: Int) -> UnsafeMutableRawPointer {
    scratch[worker].reserve(bytes)
  }

  private func workerLoop(index: Int) {
    var seen = 0
    while true {
      var spins = 0
      while generation.load(ordering: .acquiring) == seen {
        spins += 1
        if spins < 20_000 {
          spinPause()
        } else {
          pthread_mutex_lock(sleepLock)
          while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, sleepLock) }
          pthread_mutex_unlock(sleepLock)
        }
      }
      seen = generation.load(ordering: .acquiring)
      if let job = current.withLock({ $0 }) { job.drain(worker: index) }
    }
  }

  @inline(__always) private func spinPause() {
    fa_spin_pause()
  }
}

/// What a new worker thread needs to start its loop.
private final class WorkerStart {
  let pool: WorkerPool
  let index: Int
  init(pool: WorkerPool, index: Int) {
    self.pool = pool
    self.index = index
  }
}

/// A growable, 64-byte aligned byte buffer that keeps its memory across calls.
final class ScratchBuffer {
  private var base: UnsafeMutableRawPointer?
  private var capacity = 0

  func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
    if let base, capacity >= bytes { return base }
    base?.deallocate()
    capacity = max(bytes, 64)
    let memory = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    memory.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
    base = memory
    return memory
  }

  deinit { base?.deallocate() }
}
