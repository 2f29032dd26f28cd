import FlashAttentionCore
import _CPUFeatureShims

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The CPU backend: FlashAttention forward and backward on a persistent pool of worker threads,
/// with the vector kernels (C, `_FlashAttentionCPUKernels`) of the widest instruction set the CPU
/// runs.
///
/// Q is tiled into blocks of 96 rows, K and V stream through in blocks of 96 rows, every
/// product runs on a register-blocked micro-kernel (6 × 16 on AVX2, 6 × 32 on AVX-512), and the
/// softmax is online (running max and sum per row). Extra memory is a few tiles per thread plus,
/// in the backward pass, one float per query row (D) and, for fp16/bf16 storage, an fp32 dQ
/// accumulator. The backward pass is deterministic: the same bits for any thread count.
public struct CPUBackend: AttentionBackend {
  public var name: String { "cpu" }

  /// Threads that run the kernels (the calling thread included).
  public let threads: Int

  /// The compiled copy of the kernels this backend runs.
  public let instructionSet: CPUInstructionSet

  let pool: WorkerPool
  let kernels: CPUKernels

  /// Checks that this CPU can run the kernels, then binds a worker pool.
  ///
  /// - Parameters:
  ///   - threads: worker threads including the caller; `nil` means the environment variable
  ///     `FLASH_ATTENTION_CPU_THREADS` if set, else every core this process may use
  ///     (`CPUThreadCount`).
  ///   - instructionSet: which build of the kernels to run; `nil` means
  ///     `FLASH_ATTENTION_CPU_ISA` if set, else the widest this CPU supports.
  /// - Throws: `.backendUnavailable` when the CPU lacks an instruction set the kernels were
  ///   compiled for (checked before any kernel code runs) or the one asked for;
  ///   `.invalidArgument` for a thread count outside `1...CPUThreadCount.maximum` (given or from
  ///   `FLASH_ATTENTION_CPU_THREADS`) or an unknown `FLASH_ATTENTION_CPU_ISA`.
  public init(threads: Int? = nil, instructionSet: CPUInstructionSet? = nil) throws(FlashAttentionError) {
    try CPUBackend.checkInstructionSet()
    let count = try CPUThreadCount.resolve(threads)
    self.threads = count
    self.instructionSet = try CPUInstructionSet.resolve(instructionSet)
    self.kernels = try CPUBackend.kernels(for: self.instructionSet)
    self.pool = WorkerPool.shared(threads: count)
  }

  /// The kernel table of `instructionSet`; throws where this CPU or build has none.
  static func kernels(for instructionSet: CPUInstructionSet) throws(FlashAttentionError) -> CPUKernels {
    guard let kernels = CPUKernels(instructionSet) else {
      throw .backendUnavailable(
        backend: "cpu", reason: "no \(instructionSet) kernels for this CPU (they need x86-64 with \(instructionSet.level))")
    }
    return kernels
  }

  /// Throws when the running CPU lacks x86-64-v3, the least the kernels need.
  ///
  /// All Swift code and the table lookup are compiled for the baseline instruction set; only the
  /// C kernels carry a CPU target, and they are reached only through a table that `cpuid`
  /// approved, so a CPU without AVX2 gets this error, never SIGILL.
  static func checkInstructionSet() throws(FlashAttentionError) {
    if let reason = fa_cpu_refusal_reason() {
      try FlashAttentionError.throwBackendUnavailable(backend: "cpu", reason: reason)
    }
  }

  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    try forward(arguments, keySplits: 0)
  }

  /// The forward with `keySplits` key chunks per work item (split-KV; 0 chooses).
  func forward(_ arguments: ForwardArguments, keySplits: Int) throws(FlashAttentionError) {
    try CPUBackend.requireHost(arguments.q.location)
    if arguments.q.dtype.isFloat8 { return try forwardFloat8(arguments, keySplits: keySplits) }
    FlashForward(arguments, pool: pool, kernels: kernels, keySplits: keySplits).run()
    try ForwardRangeCheck.run(arguments)
  }

  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    try CPUBackend.requireHost(arguments.q.location)
    try FlashBackward(arguments, pool: pool, kernels: kernels).run()
  }

  static func requireHost(_ location: MemoryLocation) throws(FlashAttentionError) {
    if location != .host {
      throw .unsupported(backend: "cpu", feature: "tensors in \(location) memory (pass host memory)")
    }
  }
}
