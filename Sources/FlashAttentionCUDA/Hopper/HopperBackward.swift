import FlashAttentionCore
import _FlashAttentionKernelABI

/// The sm_90a backward kernels: when they apply, which form runs, and how to launch them. They
/// sit after the sm80 module's preprocess (LSE in log2 units, D per query row).
///
/// Two forms (docs/perf-notes/cuda-hopper.md, runs 25–28):
/// - fused (d = 64): one kernel per key block computes dK, dV and adds dQ into an fp32
///   accumulator (`[batch, seqlenQ, headsQ, headDim]`, the layout of
///   `AttentionKernelKey.DQReduction.atomics`) that the sm80 module's convert kernel scales;
/// - split (d = 128, 256, and every head dim in the deterministic mode): the key/value kernel
///   without dQ, then `hopper_backward_dq.cu`, one block per query block, recomputes S and dP
///   and writes dQ once. No atomics: the fp32 additions into dQ were the fused kernel's limit
///   (L2 at 85 % of its peak at d = 256), and the result is the same bits on every run.
public enum HopperBackward {
  /// Why the Hopper kernels do not cover a call with these features, or nil when they do.
  /// Softcap stays on the sm80 kernel (its dS needs the tanh derivative, not in these kernels);
  /// so do head dims other than 64, 128 and 256 (d = d_v).
  public static func coverage(
    headDim: Int, headDimV: Int, dtype: DType, softcap: Float, arch: String
  ) -> String? {
    if arch != "sm_90a" { return "device arch \(arch) is not sm_90a" }
    if headDim != headDimV || !HopperBackwardKey.supportedHeadDims.contains(headDim) {
      return "head dims \(headDim)/\(headDimV) (the Hopper backward covers d = d_v = 64, 128 or 256)"
    }
    if dtype != .float16 && dtype != .bfloat16 { return "dtype \(dtype)" }
    if softcap > 0 { return "softcap" }
    return nil
  }

  /// Whether a call runs the split form (dQ by its own kernel, no atomics).
  public static func isSplit(headDim: Int, deterministic: Bool) -> Bool {
    deterministic || headDim >= 128
  }

  /// Why the kernels cannot run this call on `device`, or nil when they can. The backend has
  /// already checked that every tensor's rows are 16-byte aligned, which is what TMA needs.
  public static func unsupportedReason(_ arguments: BackwardArguments, device: CUDADevice) -> String? {
    let shape = arguments.shape
    if let reason = coverage(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      softcap: arguments.options.softcap, arch: device.arch)
    {
      return reason
    }
    if shape.seqlenQ == 0 || shape.seqlenK == 0 { return "an empty sequence" }
    if shape.headsKV > 65535 || shape.headsQ > 65535 || shape.batch > 65535 { return "grid too large" }
    return nil
  }

  static func maskKind(_ mask: AttentionMask) -> HopperForwardKey.MaskKind {
    mask.right == 0 ? .causal : mask.isMasking ? .window : .none
  }

  /// The key/value kernel: dK and dV, and with `accumulator` (the fused form) the dQ additions
  /// into it (zeroed, fp32, `[batch, seqlenQ, headsQ, headDim]`). Call only when
  /// `unsupportedReason` is nil.
  static func launchKeyValue(
    _ arguments: BackwardArguments, lse2: UInt64, delta: UInt64, accumulator: UInt64?,
    device: CUDADevice, stream: CUDAStream, cache: KernelCache = .shared
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    guard
      let key = HopperBackwardKey(
        headDim: shape.headDim, dtype: arguments.q.dtype, mask: maskKind(arguments.mask), skipDQ: accumulator == nil)
    else { throw unsupported(arguments, device) }
    let function = try loaded(key.program, sharedMemory: key.sharedMemoryBytes, device: device, cache: cache)
    var parameters = FAHopperBackwardParams()
    try encodeMaps(arguments, queryRows: HopperBackwardKey.blockM, keyRows: key.blockN, into: &parameters, device: device)
    parameters.lse2 = devicePointer(lse2)
    parameters.delta = devicePointer(delta)
    parameters.dq_accum = deviceMutablePointer(accumulator ?? 0)
    parameters.dk = deviceMutablePointer(arguments.dK.deviceAddress)
    parameters.dv = deviceMutablePointer(arguments.dV.deviceAddress)
    parameters.dk_strides = FAStrides(arguments.dK)
    parameters.dv_strides = FAStrides(arguments.dV)
    let problem = Problem(arguments)
    parameters.seqlen_q = problem.seqlenQ
    parameters.seqlen_k = problem.seqlenK
    parameters.heads_q = problem.headsQ
    parameters.group = problem.group
    parameters.scale = problem.scale
    parameters.scale_log2 = problem.scaleLog2
    parameters.window_left = problem.windowLeft
    parameters.window_right = problem.windowRight
    try function.launch(
      grid: ((shape.seqlenK + key.blockN - 1) / key.blockN, shape.headsKV, shape.batch),
      block: (HopperBackwardKey.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: parameters,
      stream: stream)
  }

  /// The split form's dQ kernel: writes `arguments.dQ` (scaled, storage dtype) directly.
  static func launchDQ(
    _ arguments: BackwardArguments, lse2: UInt64, delta: UInt64,
    device: CUDADevice, stream: CUDAStream, cache: KernelCache = .shared
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    guard let key = HopperBackwardDQKey(headDim: shape.headDim, dtype: arguments.q.dtype, mask: maskKind(arguments.mask))
    else { throw unsupported(arguments, device) }
    let rows = HopperBackwardDQKey.blockM
    let function = try loaded(key.program, sharedMemory: key.sharedMemoryBytes, device: device, cache: cache)
    var parameters = FAHopperBackwardDQParams()
    try encodeMaps(arguments, queryRows: rows, keyRows: key.blockN, into: &parameters, device: device)
    parameters.lse2 = devicePointer(lse2)
    parameters.delta = devicePointer(delta)
    parameters.dq = deviceMutablePointer(arguments.dQ.deviceAddress)
    parameters.dq_strides = FAStrides(arguments.dQ)
    let problem = Problem(arguments)
    parameters.seqlen_q = problem.seqlenQ
    parameters.seqlen_k = problem.seqlenK
    parameters.heads_q = problem.headsQ
    parameters.group = problem.group
    parameters.scale = problem.scale
    parameters.scale_log2 = problem.scaleLog2
    parameters.window_left = problem.windowLeft
    parameters.window_right = problem.windowRight
    try function.launch(
      grid: ((shape.seqlenQ + rows - 1) / rows, shape.headsQ, shape.batch), block: (HopperBackwardDQKey.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// The compiled kernel with its shared memory opted in.
  private static func loaded(
    _ program: CUDAProgram, sharedMemory: Int, device: CUDADevice, cache: KernelCache
  ) throws(FlashAttentionError) -> CUDAFunction {
    let function = try cache.function(for: program, device: device)
    try function.setMaxDynamicSharedMemory(sharedMemory)
    return function
  }

  /// The TMA maps both kernels take: Q and dO in boxes of `queryRows`, K and V of `keyRows`.
  private static func encodeMaps<Parameters>(
    _ arguments: BackwardArguments, queryRows: Int, keyRows: Int, into parameters: inout Parameters,
    device: CUDADevice
  ) throws(FlashAttentionError) where Parameters: HopperBackwardParameters {
    try HopperTensorMaps.encode(
      [
        (arguments.q, queryRows, Parameters.qMap), (arguments.k, keyRows, Parameters.kMap),
        (arguments.v, keyRows, Parameters.vMap), (arguments.dOut, queryRows, Parameters.doutMap),
      ], into: &parameters, device: device)
  }

  private static func unsupported(_ arguments: BackwardArguments, _ device: CUDADevice) -> FlashAttentionError {
    .unsupported(
      backend: "cuda:\(device.ordinal)",
      feature: "Hopper backward kernel: \(unsupportedReason(arguments, device: device) ?? "no kernel key")")
  }

  /// Sizes, scales and the window, the fields both kernels share.
  private struct Problem {
    var seqlenQ, seqlenK, headsQ, group: Int32
    var scale, scaleLog2: Float
    var windowLeft, windowRight: Int32

    init(_ arguments: BackwardArguments) {
      let shape = arguments.shape
      seqlenQ = Int32(shape.seqlenQ)
      seqlenK = Int32(shape.seqlenK)
      headsQ = Int32(shape.headsQ)
      group = Int32(shape.groupSize)
      scale = arguments.scale
      scaleLog2 = arguments.scale * 1.442_695_04
      (windowLeft, windowRight) = kernelWindow(arguments.mask)
    }
  }
}

/// The parameter structs of the two Hopper backward kernels, which start with the same maps.
protocol HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { get }
  static var kMap: WritableKeyPath<Self, FATensorMap> { get }
  static var vMap: WritableKeyPath<Self, FATensorMap> { get }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { get }
}

extension FAHopperBackwardParams: HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { \.tm_q }
  static var kMap: WritableKeyPath<Self, FATensorMap> { \.tm_k }
  static var vMap: WritableKeyPath<Self, FATensorMap> { \.tm_v }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { \.tm_dout }
}

extension FAHopperBackwardDQParams: HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { \.tm_q }
  static var kMap: WritableKeyPath<Self, FATensorMap> { \.tm_k }
  static var vMap: WritableKeyPath<Self, FATensorMap> { \.tm_v }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { \.tm_dout }
}
