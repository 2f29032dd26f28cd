import FlashAttentionCore

extension CUDABackend {
  /// Queues the forward pass on `stream` and returns without waiting; the views must be device
  /// memory of this backend's device (another framework's tensors too: `TensorView(devicePointer:
  /// ...)`), and `stream` may be a caller's (`CUDAStream(borrowing:device:)`). The kernel comes
  /// from `KernelSelection.forward`: the Hopper kernel where it covers the call, the
  /// FlashAttention-2 kernel elsewhere. The forward needs no scratch memory.
  /// - Throws: `.unsupported` for what the kernels cannot run (fp32 storage, a head dim, sizes,
  ///   unaligned rows, host memory), `.invalidArgument` for views or a stream of another device.
  package func enqueueForward(_ arguments: ForwardArguments, on stream: CUDAStream) throws(FlashAttentionError) {
    let shape = arguments.shape
    try checkFixedLengthProblem(shape, dtype: arguments.q.dtype)
    try CUDACallChecks.features(arguments.options, backend: name, dropoutAllowed: true)
    try checkDeviceCall(
      [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out")],
      location: arguments.q.location, stream: stream)
    if shape.batch == 0 || shape.seqlenQ == 0 { return }
    if arguments.q.dtype.isFloat8 {
      // The descale views were checked to live where q does (FP8Descale.validate).
      if let obstacle = KernelSelection.hopperForwardObstacle(arguments, arch: device.arch) {
        throw .unsupported(
          backend: name, feature: "float8_e4m3fn inputs here: \(obstacle) (fp8 runs on the Hopper kernel only: sm_90a, "
            + "head dims 64, 128 or 256, 16-byte aligned rows)")
      }
    }
    switch forwardPlan(arguments) {
    case let .hopper(key, persistent):
      try withAlibiSlopes(arguments.options, on: stream) { (slopes) throws(FlashAttentionError) in
        try HopperLaunch.forward(
          arguments, key: key, persistent: persistent, device: device, stream: stream, alibiSlopes: slopes)
      }
    case let .flashAttention2(key):
      try withAlibiSlopes(arguments.options, on: stream) { (slopes) throws(FlashAttentionError) in
        try FlashAttention2Launch.forward(arguments, key: key, device: device, stream: stream, alibiSlopes: slopes)
      }
    }
  }

  /// The kernel a forward call runs on this backend (its device and tuning).
  package func forwardPlan(_ arguments: ForwardArguments) -> ForwardKernelPlan {
    KernelSelection.forward(arguments, arch: device.arch, tuning: tuning)
  }
}
