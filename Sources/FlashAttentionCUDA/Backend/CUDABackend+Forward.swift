import FlashAttentionCore

extension CUDABackend {
  /// Queues the forward pass on `stream` without waiting; all views must be on this device.
  /// The kernel comes from `KernelSelection.forward`: the Hopper kernel where it covers the
  /// call, the FlashAttention-2 kernel elsewhere.
  public func enqueueForward(_ arguments: ForwardArguments, on stream: CUDAStream) throws(FlashAttentionError) {
    let shape = arguments.shape
    if shape.batch == 0 || shape.seqlenQ == 0 { return }
    try checkKernelSupport(shape: shape, dtype: arguments.q.dtype)
    for (tensor, label) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out")] {
      try checkAligned(tensor, label)
    }
    switch forwardPlan(arguments) {
    case let .hopper(key, persistent):
      try HopperLaunch.forward(arguments, key: key, persistent: persistent, device: device, stream: stream)
    case let .flashAttention2(key):
      try FlashAttention2Launch.forward(arguments, key: key, device: device, stream: stream)
    }
  }

  /// The kernel a forward call runs on this backend (its device and tuning).
  public func forwardPlan(_ arguments: ForwardArguments) -> ForwardKernelPlan {
    KernelSelection.forward(arguments, arch: device.arch, tuning: tuning)
  }

  func checkKernelSupport(shape: AttentionShape, dtype: DType) throws(FlashAttentionError) {
    for (value, label) in [(shape.headDim, "head_dim"), (shape.headDimV, "head_dim_v")]
    where !FlashAttention2Key.supportsHeadDim(value) {
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
