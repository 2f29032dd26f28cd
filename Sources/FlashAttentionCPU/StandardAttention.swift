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
public struct StandardAttention: AttentionBackend {
  public var name: String { "cpu-standard" }
  public let threads: Int
  let pool: WorkerPool

  @_optimize(none)  // keeps the refusal path free of AVX moves; see `CPUBackend.checkInstructionSet`
  public init(threads: Int? = nil) throws(FlashAttentionError) {
    try CPUBackend.checkInstructionSet()
    let count = threads ?? CPUBackend.defaultThreadCount
    if count < 1 { throw .invalidArgument(name: "threads", value: "\(count)", reason: "must be >= 1") }
    self.threads = count
    pool = WorkerPool.shared(threads: count)
  }

  /// Bytes the forward pass allocates for `shape`: the score matrix S (= P) plus fp32 copies of
  /// Kᵀ and V.
  public func requiredBytes(for shape: AttentionShape) -> Int {
    Layout(shape).forwardBytes
  }

  /// Bytes the backward pass allocates: P and dS, plus fp32 copies of K, Kᵀ, Vᵀ, Q and dO.
  public func requiredBackwardBytes(for shape: AttentionShape) -> Int {
    Layout(shape).backwardBytes
  }

  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    try checkSupported(arguments.q, arguments.options)
    let layout = Layout(arguments.shape)
    let memory = try Allocation(bytes: layout.forwardBytes, context: "standard attention forward (\(arguments.shape))")
    defer { memory.release() }
    StandardForward(arguments: arguments, layout: layout, memory: memory.base, pool: pool).run()
  }

  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    try checkSupported(arguments.q, arguments.options)
    let layout = Layout(arguments.shape)
    let memory = try Allocation(bytes: layout.backwardBytes, context: "standard attention backward (\(arguments.shape))")
    defer { memory.release() }
    StandardBackward(arguments: arguments, layout: layout, memory: memory.base, pool: pool).run()
  }

  private func checkSupported(_ q: TensorView, _ options: AttentionOptions) throws(FlashAttentionError) {
    try CPUBackend.requireHost(q.location)
    if q.dtype != .float32 {
      throw .unsupported(backend: name, feature: "\(q.dtype) storage (standard attention is float32)")
    }
    if options.softcap > 0 { throw .unsupported(backend: name, feature: "softcap") }
  }

  /// Sizes of the materialized matrices; rows padded to the micro-kernel's 6, columns to 16.
  struct Layout {
    let shape: AttentionShape
    let paddedQueries: Int
    let paddedKeys: Int
    let paddedDim: Int
    let paddedDimV: Int

    init(_ shape: AttentionShape) {
      self.shape = shape
      paddedQueries = roundUp(max(shape.seqlenQ, 1), TileGEMM.rowBlock)
      paddedKeys = roundUp(max(shape.seqlenK, 1), 16)
      paddedDim = roundUp(shape.headDim, 16)
      paddedDimV = roundUp(shape.headDimV, 16)
    }

    /// Floats of one (batch, query head) score matrix.
    var scoreFloats: Int { paddedQueries * paddedKeys }
    var scoresFloats: Int { shape.batch * shape.headsQ * scoreFloats + slack }
    var keysTransposedFloats: Int { shape.batch * shape.headsKV * shape.headDim * paddedKeys }
    var valuesFloats: Int { shape.batch * shape.headsKV * paddedKeys * paddedDimV }
    var valuesTransposedFloats: Int { shape.batch * shape.headsKV * shape.headDimV * paddedKeys }
    var keysFloats: Int { shape.batch * shape.headsKV * paddedKeys * paddedDim }
    var queriesFloats: Int { shape.batch * shape.headsQ * paddedQueries * paddedDim }
    var gradientsFloats: Int { shape.batch * shape.headsQ * paddedQueries * paddedDimV }
    /// Reading 6-row blocks of a transposed matrix may run a few floats past the end.
    let slack = 64

    var forwardBytes: Int { 4 * (scoresFloats + keysTransposedFloats + valuesFloats) }
    var backwardBytes: Int {
      4 * (2 * scoresFloats + keysTransposedFloats + keysFloats + valuesTransposedFloats + queriesFloats
        + gradientsFloats + shape.batch * shape.headsQ * paddedQueries)
    }
  }

  /// One big allocation, refused up front when the machine does not have the memory.
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
