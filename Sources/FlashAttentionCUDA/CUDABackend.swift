import FlashAttentionCore

/// The NVIDIA backend: FlashAttention kernels compiled at run time by NVRTC for the device's
/// exact architecture (the Hopper kernels on sm_90a, the FlashAttention-2 kernels elsewhere and
/// for what the Hopper ones do not cover).
///
/// `forward` and `backward` are synchronous: views located `.cuda(device:)` are used in place
/// (no copies), `.host` views are staged through device memory and copied back, and the call
/// returns when the results are there. `enqueueForward` and `enqueueBackward` only queue the
/// work on a stream, the backend's own or a caller's (`CUDAStream(borrowing:device:)`), for
/// device memory, and return at once; their scratch comes from a per-device pool in stream
/// order, or from a caller's `CUDAWorkspace`. Storage must be fp16 or bf16: fp32 views throw
/// `.unsupported` (the tensor cores take 16-bit operands, and a silent down-conversion would not
/// meet fp32 accuracy).
public struct CUDABackend: AttentionBackend {
  package let device: CUDADevice
  /// The stream `forward` and `backward` queue on (enqueue calls take any stream).
  package let stream: CUDAStream
  /// Overrides of the tile tables for tuning runs (`--forward-tile`, `--backward-tile`,
  /// `--forward-kernel` of the command-line tool); the default is the tables.
  package var tuning: CUDAKernelTuning
  public var name: String { "cuda:\(device.ordinal)" }

  /// Opens the driver and NVRTC and makes `device` usable, or says why it cannot.
  /// - Parameters:
  ///   - device: the CUDA device ordinal.
  ///   - tuning: tile-table overrides for tuning runs (the default runs the tables).
  /// - Throws: `.backendUnavailable` naming what is missing (driver, NVRTC, an Ampere+ GPU).
  public init(device: Int = 0) throws(FlashAttentionError) {
    try self.init(device: device, tuning: CUDAKernelTuning())
  }

  /// As `init(device:)`, with tile-table overrides (the tool's tuning flags).
  package init(device: Int, tuning: CUDAKernelTuning) throws(FlashAttentionError) {
    let opened = try CUDADevice.open(ordinal: device)
    if opened.computeCapability.major < 8 {
      throw .backendUnavailable(
        backend: "cuda",
        reason: "\(opened.name) has compute capability \(opened.computeCapability.major)."
          + "\(opened.computeCapability.minor); the kernels need 8.0 (Ampere) or newer")
    }
    _ = try KernelCompiler.nvrtcVersion()
    self.device = opened
    self.stream = try CUDAStream(device: opened)
    self.tuning = tuning
  }

  /// Forward, synchronously: device views in place, host views staged.
  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    try checkFixedLengthProblem(arguments.shape, dtype: arguments.q.dtype)
    try CUDACallChecks.features(arguments.options, backend: name, dropoutAllowed: true)
    switch arguments.q.location {
    case .cuda:
      try enqueueForward(arguments, on: stream)
      try stream.synchronize()
    case .host:
      try forwardStaged(arguments)
    }
  }

  /// Backward, synchronously: device views in place, host views staged.
  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    try checkFixedLengthProblem(arguments.shape, dtype: arguments.q.dtype)
    try CUDACallChecks.features(arguments.options, backend: name, dropoutAllowed: true)
    switch arguments.q.location {
    case .cuda:
      try enqueueBackward(arguments, on: stream)
      try stream.synchronize()
    case .host:
      try backwardStaged(arguments)
    }
  }
}
