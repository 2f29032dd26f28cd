import FlashAttentionCore

/// The NVIDIA backend: FlashAttention kernels compiled at run time by NVRTC for the device's
/// exact architecture (the Hopper kernels on sm_90a, the FlashAttention-2 kernels elsewhere and
/// for what the Hopper ones do not cover).
///
/// Views located `.cuda(device:)` are used in place (no copies); `.host` views are staged
/// through device buffers and copied back, so the same call works for both. Storage must be
/// fp16 or bf16: fp32 views throw `.unsupported` (the tensor cores take 16-bit operands, and a
/// silent down-conversion would not meet fp32 accuracy).
public struct CUDABackend: AttentionBackend {
  public let device: CUDADevice
  /// The stream every call of this backend queues on.
  public let stream: CUDAStream
  /// Overrides of the tile tables for tuning runs (`--forward-tile`, `--backward-tile`,
  /// `--forward-kernel` of the command-line tool); the default is the tables.
  public var tuning: CUDAKernelTuning
  let workspace = BackwardWorkspace()
  public var name: String { "cuda:\(device.ordinal)" }

  /// Opens the driver and NVRTC and makes `device` usable, or says why it cannot.
  /// - Parameters:
  ///   - device: the CUDA device ordinal.
  ///   - tuning: tile-table overrides for tuning runs (the default runs the tables).
  /// - Throws: `.backendUnavailable` naming what is missing (driver, NVRTC, an Ampere+ GPU).
  public init(device: Int = 0, tuning: CUDAKernelTuning = CUDAKernelTuning()) throws(FlashAttentionError) {
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

  public func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    try checkStorage(arguments.q.dtype)
    switch arguments.q.location {
    case .cuda(let ordinal):
      try checkDevice(ordinal)
      try enqueueForward(arguments, on: stream)
      try stream.synchronize()
    case .host:
      try forwardStaged(arguments)
    }
  }

  public func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    try checkStorage(arguments.q.dtype)
    switch arguments.q.location {
    case .cuda(let ordinal):
      try checkDevice(ordinal)
      try enqueueBackward(arguments, on: stream)
      try stream.synchronize()
    case .host:
      try backwardStaged(arguments)
    }
  }

  func checkStorage(_ dtype: DType) throws(FlashAttentionError) {
    if dtype == .float32 {
      throw .unsupported(
        backend: name, feature: "float32 storage (use float16 or bfloat16 tensors; the kernels accumulate in fp32)")
    }
  }

  func checkDevice(_ ordinal: Int) throws(FlashAttentionError) {
    if ordinal != device.ordinal {
      throw .invalidArgument(
        name: "q.location", value: "cuda:\(ordinal)", reason: "this backend runs on cuda:\(device.ordinal)")
    }
  }
}
