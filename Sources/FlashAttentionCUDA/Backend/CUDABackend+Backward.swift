import FlashAttentionCore

extension CUDABackend {
  /// Queues the backward pass on `stream` and returns without waiting; the views must be device
  /// memory of this backend's device and `stream` may be a caller's.
  ///
  /// The kernels come from `KernelSelection.backward` (`BackwardKernelPlan`): the preprocess
  /// (D = rowsum(dO ∘ O), the LSE in log2 units), then dK and dV per key block with dQ added
  /// into an fp32 accumulator and converted, or on sm_90a the Hopper kernels (fused, or split:
  /// dK/dV, then dQ by its own kernel without atomics). The fp32 additions from many key blocks
  /// make dQ's rounding order vary between runs; with `options.deterministic` the Hopper split
  /// form has no such additions, and the FlashAttention-2 kernel runs its key blocks one launch
  /// after another (each dQ element then gets at most one addition per launch, in a fixed
  /// order), which gives the same bits every run at a large cost in speed.
  ///
  /// The fp32 scratch (`backwardWorkspaceBytes(for:)`) comes from `workspace` when given, else
  /// from the device's scratch pool, allocated and freed in `stream`'s order: calls on several
  /// streams run concurrently, none waits.
  /// - Throws: as `enqueueForward`, and `.invalidArgument` for a workspace that is too small or
  ///   not 256-byte aligned.
  package func enqueueBackward(
    _ arguments: BackwardArguments, on stream: CUDAStream, workspace: CUDAWorkspace? = nil
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    try checkFixedLengthProblem(shape, dtype: arguments.q.dtype)
    try CUDACallChecks.features(arguments.options, backend: name, dropoutAllowed: true)
    try checkDeviceCall(
      [
        (arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out"),
        (arguments.dOut, "dout"), (arguments.dQ, "dq"), (arguments.dK, "dk"), (arguments.dV, "dv"),
      ], location: arguments.q.location, stream: stream)
    if shape.batch == 0 { return }
    let plan = backwardPlan(arguments)
    let layout = BackwardScratch.Layout(plan: plan, shape: shape)
    if let workspace {
      if workspace.byteCount < layout.bytes {
        throw .invalidArgument(
          name: "workspace.byteCount", value: "\(workspace.byteCount)", reason: "must be at least \(layout.bytes)")
      }
      if workspace.address % 256 != 0 {
        throw .invalidArgument(name: "workspace.address", value: "\(workspace.address)", reason: "must be 256-byte aligned")
      }
      try enqueue(plan, arguments, scratch: BackwardScratch(address: workspace.address, layout: layout, shape: shape), on: stream)
      return
    }
    try DeviceScratchPool.shared(for: device).withScratch(layout.bytes, on: stream) { (address) throws(FlashAttentionError) in
      try enqueue(plan, arguments, scratch: BackwardScratch(address: address, layout: layout, shape: shape), on: stream)
    }
  }

  /// The bytes of scratch a backward call needs (for a caller-provided `CUDAWorkspace`).
  package func backwardWorkspaceBytes(for arguments: BackwardArguments) -> Int {
    BackwardScratch.Layout(plan: backwardPlan(arguments), shape: arguments.shape).bytes
  }

  /// The kernels a backward call runs on this backend (its device and tuning).
  package func backwardPlan(_ arguments: BackwardArguments) -> BackwardKernelPlan {
    KernelSelection.backward(arguments, arch: device.arch, tuning: tuning)
  }

  /// Queues the plan's kernels using `scratch`.
  private func enqueue(
    _ plan: BackwardKernelPlan, _ arguments: BackwardArguments, scratch: BackwardScratch, on stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    if scratch.accumulatorFloats > 0 {
      try device.makeCurrent()
      try device.api.check(
        device.api.cuMemsetD32Async(scratch.accumulator, 0, scratch.accumulatorFloats, stream.handle),
        "cuMemsetD32Async(dQ accumulator)")
    }
    // The slopes' device copy (ALiBi calls) serves every kernel of the call.
    try withAlibiSlopes(arguments.options, on: stream) { (slopes) throws(FlashAttentionError) in
      if shape.seqlenQ > 0 {
        try FlashAttention2Launch.preprocess(
          arguments, key: plan.preprocess, scratch: scratch, device: device, stream: stream, alibiSlopes: slopes)
      }
      switch plan.form {
      case let .hopperSplit(keyValue, dq):
        try HopperLaunch.backwardKeyValue(
          arguments, key: keyValue, scratch: scratch, device: device, stream: stream, alibiSlopes: slopes)
        try HopperLaunch.backwardDQ(arguments, key: dq, scratch: scratch, device: device, stream: stream, alibiSlopes: slopes)
      case let .hopperFused(keyValue, convert):
        try HopperLaunch.backwardKeyValue(
          arguments, key: keyValue, scratch: scratch, device: device, stream: stream, alibiSlopes: slopes)
        try FlashAttention2Launch.convert(arguments, key: convert, scratch: scratch, device: device, stream: stream)
      case let .flashAttention2(keyValue, convert):
        // No keys: dK and dV are empty and dQ is 0 (the zeroed accumulator); no queries: dK and
        // dV are 0 (a key block with no steps writes zeros).
        if shape.seqlenK > 0 {
          try FlashAttention2Launch.keyValue(
            arguments, key: keyValue, scratch: scratch, device: device, stream: stream, alibiSlopes: slopes)
        }
        if shape.seqlenQ > 0 {
          try FlashAttention2Launch.convert(arguments, key: convert, scratch: scratch, device: device, stream: stream)
        }
      }
    }
  }
}
