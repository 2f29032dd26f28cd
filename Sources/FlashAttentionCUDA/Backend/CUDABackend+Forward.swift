import FlashAttentionCore
import _FlashAttentionKernelABI

extension CUDABackend {
  /// Queues the forward pass on `stream` without waiting; all views must be on this device.
  ///
  /// Registered `ForwardKernelProvider`s (the Hopper kernels) are asked first; otherwise the
  /// FlashAttention-2 kernel for the call's key runs.
  public func enqueueForward(_ arguments: ForwardArguments, on stream: CUDAStream) throws(FlashAttentionError) {
    let shape = arguments.shape
    if shape.batch == 0 || shape.seqlenQ == 0 { return }
    try checkKernelSupport(shape: shape, dtype: arguments.q.dtype)
    for (tensor, label) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out")] {
      try checkAligned(tensor, label)
    }
    for provider in ForwardKernelProviders.current {
      if try provider.enqueueForward(arguments, device: device, stream: stream) { return }
    }
    let key = forwardKey(arguments)
    let function = try loadedFunction(key)
    let (left, right) = kernelWindow(arguments.mask)
    let parameters = FAForwardParams(
      q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
      v: devicePointer(arguments.v.deviceAddress), o: deviceMutablePointer(arguments.out.deviceAddress),
      lse: deviceMutablePointer(arguments.lse.deviceAddress),
      q_strides: FAStrides(arguments.q), k_strides: FAStrides(arguments.k), v_strides: FAStrides(arguments.v),
      o_strides: FAStrides(arguments.out), lse_strides: FAStatsStrides(arguments.lse),
      seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize),
      scale: arguments.scale, softcap: arguments.options.softcap, window_left: left, window_right: right)
    let blocks = (shape.seqlenQ + key.tile.blockM - 1) / key.tile.blockM
    try function.launch(
      grid: (blocks, shape.headsQ, shape.batch), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// The kernel key of a forward call on this device.
  public func forwardKey(_ arguments: ForwardArguments) -> AttentionKernelKey {
    let shape = arguments.shape
    return AttentionKernelKey.make(
      kind: .forward, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      masked: arguments.mask.isMasking, softcap: arguments.options.softcap > 0, deterministic: false,
      arch: device.arch, tuning: tuning)
  }

  /// The loaded kernel for `key`, with its shared-memory limit raised once per load.
  func loadedFunction(_ key: AttentionKernelKey) throws(FlashAttentionError) -> CUDAFunction {
    let bytes = key.sharedMemoryBytes
    if bytes > device.sharedMemoryPerBlockOptIn {
      throw .unsupported(
        backend: name,
        feature: "\(key) (needs \(bytes) bytes of shared memory, \(device.name) allows \(device.sharedMemoryPerBlockOptIn))")
    }
    let function = try KernelCache.shared.function(for: key.program, device: device)
    if bytes > 48 * 1024 { try function.setMaxDynamicSharedMemory(bytes) }
    return function
  }

  func checkKernelSupport(shape: AttentionShape, dtype: DType) throws(FlashAttentionError) {
    for (value, label) in [(shape.headDim, "head_dim"), (shape.headDimV, "head_dim_v")]
    where !AttentionKernelKey.supportsHeadDim(value) {
      throw .unsupported(backend: name, feature: "\(label) = \(value) (supported: multiples of 8 up to 256)")
    }
  }

  /// cp.async moves 16 bytes: every row of a device tensor must start 16-byte aligned.
  func checkAligned(_ tensor: TensorView, _ label: String) throws(FlashAttentionError) {
    let rowStridesAligned = tensor.strides.dropLast().allSatisfy { $0 % 8 == 0 }
    if tensor.deviceAddress % 16 != 0 || !rowStridesAligned {
      throw .unsupported(
        backend: name,
        feature: "\(label) with base \(tensor.deviceAddress) and strides \(tensor.strides) "
          + "(device tensors need 16-byte aligned rows: base % 16 == 0, strides multiples of 8)")
    }
  }
}
