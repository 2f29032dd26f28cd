import FlashAttentionCore

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
    var (function, packed) = try begin(
      key.program, sharedMemory: key.sharedMemoryBytes, queryRows: HopperBackwardKey.blockM, keyRows: key.blockN,
      arguments, lse2: lse2, delta: delta, device: device, cache: cache)
    packed.append(accumulator ?? 0)
    packed.append(arguments.dK.deviceAddress)
    packed.append(arguments.dV.deviceAddress)
    append(strides: arguments.dK, to: &packed)
    append(strides: arguments.dV, to: &packed)
    appendProblem(arguments, to: &packed)
    try function.launch(
      grid: ((shape.seqlenK + key.blockN - 1) / key.blockN, shape.headsKV, shape.batch),
      block: (HopperBackwardKey.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, arguments: packed, stream: stream)
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
    var (function, packed) = try begin(
      key.program, sharedMemory: key.sharedMemoryBytes, queryRows: rows, keyRows: key.blockN,
      arguments, lse2: lse2, delta: delta, device: device, cache: cache)
    packed.append(arguments.dQ.deviceAddress)
    append(strides: arguments.dQ, to: &packed)
    appendProblem(arguments, to: &packed)
    try function.launch(
      grid: ((shape.seqlenQ + rows - 1) / rows, shape.headsQ, shape.batch), block: (HopperBackwardDQKey.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, arguments: packed, stream: stream)
  }

  /// The compiled kernel with its shared memory opted in, and its leading arguments, which both
  /// kernels share: TMA maps of Q and dO (boxes of `queryRows`) and K and V (`keyRows`), then the
  /// preprocess's LSE2 and D.
  private static func begin(
    _ program: CUDAProgram, sharedMemory: Int, queryRows: Int, keyRows: Int, _ arguments: BackwardArguments,
    lse2: UInt64, delta: UInt64, device: CUDADevice, cache: KernelCache
  ) throws(FlashAttentionError) -> (CUDAFunction, CUDAKernelArguments) {
    let function = try cache.function(for: program, device: device)
    try function.setMaxDynamicSharedMemory(sharedMemory)
    let maps = try HopperTensorMaps(
      [(arguments.q, queryRows), (arguments.k, keyRows), (arguments.v, keyRows), (arguments.dOut, queryRows)],
      device: device)
    var packed = CUDAKernelArguments()
    maps.append(to: &packed)
    packed.append(lse2)
    packed.append(delta)
    return (function, packed)
  }

  private static func unsupported(_ arguments: BackwardArguments, _ device: CUDADevice) -> FlashAttentionError {
    .unsupported(
      backend: "cuda:\(device.ordinal)",
      feature: "Hopper backward kernel: \(unsupportedReason(arguments, device: device) ?? "no kernel key")")
  }

  private static func append(strides tensor: TensorView, to packed: inout CUDAKernelArguments) {
    packed.append(Int64(tensor.strides[0]))
    packed.append(Int64(tensor.strides[1]))
    packed.append(Int64(tensor.strides[2]))
  }

  /// Sizes, scales and the window, the trailing arguments of both kernels.
  private static func appendProblem(_ arguments: BackwardArguments, to packed: inout CUDAKernelArguments) {
    let shape = arguments.shape
    packed.append(Int32(shape.seqlenQ))
    packed.append(Int32(shape.seqlenK))
    packed.append(Int32(shape.headsQ))
    packed.append(Int32(shape.groupSize))
    packed.append(arguments.scale)
    packed.append(arguments.scale * 1.442_695_04)
    // A bound of seqlenQ + seqlenK already shows every key to every row: clamping there keeps the
    // kernels' index sums far from Int32 overflow.
    let reach = shape.seqlenQ + shape.seqlenK
    packed.append(Int32(clamping: arguments.mask.left.map { min($0, reach) } ?? -1))
    packed.append(Int32(clamping: arguments.mask.right.map { min($0, reach) } ?? -1))
  }
}
