import FlashAttentionCore

/// The sm_90a backward key/value kernel (`hopper_backward.cu`): when it applies, and how to
/// launch it. It sits between the sm80 module's preprocess (LSE in log2 units, D) and dQ
/// conversion, with the dQ accumulator in the `[batch, seqlenQ, headsQ, headDim]` layout of
/// `AttentionKernelKey.DQReduction.atomics`.
public enum HopperBackward {
  /// Why the Hopper kernel does not cover a call with these features, or nil when it does.
  /// Softcap and the deterministic mode stay on the sm80 kernel (their dS and launch order
  /// are not in this kernel); so do head dims other than 64, 128 and 256 (d = d_v).
  public static func coverage(
    headDim: Int, headDimV: Int, dtype: DType, softcap: Float, deterministic: Bool, arch: String
  ) -> String? {
    if arch != "sm_90a" { return "device arch \(arch) is not sm_90a" }
    if headDim != headDimV || !HopperBackwardKey.supportedHeadDims.contains(headDim) {
      return "head dims \(headDim)/\(headDimV) (the Hopper backward covers d = d_v = 64, 128 or 256)"
    }
    if dtype != .float16 && dtype != .bfloat16 { return "dtype \(dtype)" }
    if softcap > 0 { return "softcap" }
    if deterministic { return "the deterministic mode" }
    return nil
  }

  /// Why the kernel cannot run this call on `device`, or nil when it can. The backend has
  /// already checked that every tensor's rows are 16-byte aligned, which is what TMA needs.
  public static func unsupportedReason(_ arguments: BackwardArguments, device: CUDADevice) -> String? {
    let shape = arguments.shape
    if let reason = coverage(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      softcap: arguments.options.softcap, deterministic: arguments.options.deterministic, arch: device.arch)
    {
      return reason
    }
    if shape.seqlenQ == 0 || shape.seqlenK == 0 { return "an empty sequence" }
    if shape.headsKV > 65535 || shape.batch > 65535 { return "grid too large" }
    return nil
  }

  /// The kernel key for a call (call only when `unsupportedReason` is nil).
  static func key(for arguments: BackwardArguments) -> HopperBackwardKey? {
    let mask = arguments.mask
    let kind: HopperForwardKey.MaskKind = mask.right == 0 ? .causal : mask.isMasking ? .window : .none
    return HopperBackwardKey(headDim: arguments.shape.headDim, dtype: arguments.q.dtype, mask: kind)
  }

  /// Queues dK, dV and the dQ additions into `accumulator` (zeroed, fp32, `[batch, seqlenQ,
  /// headsQ, headDim]`), reading the preprocess's `lse2` and `delta` (`[batch, headsQ, seqlenQ]`).
  static func launch(
    _ arguments: BackwardArguments, lse2: UInt64, delta: UInt64, accumulator: UInt64,
    device: CUDADevice, stream: CUDAStream, cache: KernelCache = .shared
  ) throws(FlashAttentionError) {
    if let reason = unsupportedReason(arguments, device: device) {
      throw .unsupported(backend: "cuda:\(device.ordinal)", feature: "Hopper backward kernel: \(reason)")
    }
    guard let key = key(for: arguments) else { return }
    let function = try cache.function(for: key.program, device: device)
    try function.setMaxDynamicSharedMemory(key.sharedMemoryBytes)

    let shape = arguments.shape
    let (m, n) = (HopperBackwardKey.blockM, key.blockN)
    let maps = try HopperTensorMaps(
      [(arguments.q, m), (arguments.k, n), (arguments.v, n), (arguments.dOut, m)], device: device)
    var packed = CUDAKernelArguments()
    maps.append(to: &packed)
    packed.append(lse2)
    packed.append(delta)
    packed.append(accumulator)
    packed.append(arguments.dK.deviceAddress)
    packed.append(arguments.dV.deviceAddress)
    for tensor in [arguments.dK, arguments.dV] {
      packed.append(Int64(tensor.strides[0]))
      packed.append(Int64(tensor.strides[1]))
      packed.append(Int64(tensor.strides[2]))
    }
    packed.append(Int32(shape.seqlenQ))
    packed.append(Int32(shape.seqlenK))
    packed.append(Int32(shape.headsQ))
    packed.append(Int32(shape.groupSize))
    packed.append(arguments.scale)
    packed.append(arguments.scale * 1.442_695_04)
    // A bound of seqlenQ + seqlenK already shows every key to every row: clamping there keeps the
    // kernel's index sums far from Int32 overflow.
    let reach = shape.seqlenQ + shape.seqlenK
    packed.append(Int32(clamping: arguments.mask.left.map { min($0, reach) } ?? -1))
    packed.append(Int32(clamping: arguments.mask.right.map { min($0, reach) } ?? -1))
    try function.launch(
      grid: ((shape.seqlenK + n - 1) / n, shape.headsKV, shape.batch), block: (HopperBackwardKey.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, arguments: packed, stream: stream)
  }
}
