import FlashAttentionCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// "Standard attention" in float32 on the CPU: the baseline that FlashAttention is measured
/// against. It materializes S and P for the whole `batch × heads × seqlen_q × seqlen_k` problem
/// (and dS in the backward pass), with the same SIMD micro-kernel and thread pool as the flash
/// kernels so that the comparison is about the algorithm, not the GEMM.
///
/// Supports fp32 storage, GQA, causal and window masks; softcap and half precisions are the
/// flash backend's job (`.unsupported`). Before allocating it checks the machine's available
/// memory and throws `.outOfMemory` instead of letting the kernel kill the process.
package struct StandardAttention: AttentionBackend {
  package var name: String { "cpu-standard" }
  package let threads: Int
  /// The compiled copy of the kernels it runs (the same choice as `CPUBackend`'s).
  package let instructionSet: CPUInstructionSet
  let pool: WorkerPool
  let kernels: CPUKernels

  package init(threads: Int? = nil, instructionSet: CPUInstructionSet? = nil) throws(FlashAttentionError) {
    try CPUBackend.checkInstructionSet()
    let count = try CPUThreadCount.resolve(threads)
    self.threads = count
    self.instructionSet = try CPUInstructionSet.resolve(instructionSet)
    kernels = try CPUBackend.kernels(for: self.instructionSet)
    pool = WorkerPool.shared(threads: count)
  }

  /// Bytes the forward pass allocates for `shape`: the score matrix S (= P) plus fp32 copies of
  /// Kᵀ and V.
  package func requiredBytes(for shape: AttentionShape) -> Int {
    StandardLayout(shape).forwardBytes
  }

  /// Bytes the backward pass allocates: P and dS, plus fp32 copies of K, Kᵀ, Vᵀ, Q and dO.
  package func requiredBackwardBytes(for shape: AttentionShape) -> Int {
    StandardLayout(shape).backwardBytes
  }

  package func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    try checkSupported(arguments.q, arguments.options)
    let layout = StandardLayout(arguments.shape)
    let memory = try Allocation(bytes: layout.forwardBytes, context: "standard attention forward (\(arguments.shape))")
    defer { memory.release() }
    StandardForward(arguments: arguments, memory: memory.base, pool: pool, kernels: kernels).run()
  }

  package func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    try checkSupported(arguments.q, arguments.options)
    let layout = StandardLayout(arguments.shape)
    let memory = try Allocation(bytes: layout.backwardBytes, context: "standard attention backward (\(arguments.shape))")
    defer { memory.release() }
    StandardBackward(arguments: arguments, memory: memory.base, pool: pool, kernels: kernels).run()
  }

  private func checkSupported(_ q: TensorView, _ options: AttentionOptions) throws(FlashAttentionError) {
    try CPUBackend.requireHost(q.location)
    if q.dtype != .float32 {
      throw .unsupported(backend: name, feature: "\(q.dtype) storage (standard attention is float32)")
    }
    if options.softcap > 0 { throw .unsupported(backend: name, feature: "softcap") }
    if options.alibiSlopes != nil { throw .unsupported(backend: name, feature: "ALiBi") }
    if options.activeDropout != nil { throw .unsupported(backend: name, feature: "dropout") }
  }

  /// Sizes of the materialized matrices; rows padded to the micro-kernel's 6, columns to 16.
  struct Allocation {
    let base: UnsafeMutablePointer<Float>

    init(bytes: Int, context: String) throws(FlashAttentionError) {
      if let available = MachineMemory.availableBytes(), bytes > available {
        throw .outOfMemory(bytes: bytes, context: context + ", \(ByteCountFormatting.string(available)) available")
      }
      guard let raw = malloc(max(bytes, 64)) else { throw .outOfMemory(bytes: bytes, context: context) }
      base = raw.assumingMemoryBound(to: Float.self)
    }

    func release() { free(base) }
  }
}

/// The memory the kernel says it could give this process now (`MemAvailable`), if known.
enum MachineMemory {
  static func availableBytes() -> Int? {
    guard let file = fopen("/proc/meminfo", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
      let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      if text.hasPrefix("MemAvailable:") {
        let digits = text.dropFirst("MemAvailable:".count).filter(\.isNumber)
        return Int(digits).map { $0 * 1024 }
      }
    }
    return nil
  }
}
