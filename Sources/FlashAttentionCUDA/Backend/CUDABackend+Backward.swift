import FlashAttentionCore

extension CUDABackend {
  /// Queues the backward pass on `stream` without waiting; all views must be on this device.
  ///
  /// Three steps: D = rowsum(dO ∘ O) (preprocess), dK/dV per key block with dQ added into an
  /// fp32 accumulator, then dQ converted to the storage dtype. On sm_90a, where the wgmma
  /// kernels of `HopperBackward` cover the call (d = d_v = 64, 128 or 256, no softcap), they
  /// run the middle step, or (the split form: d ≥ 128, or deterministic) the last two steps
  /// become the key/value kernel without dQ and a dQ kernel that writes dQ itself. Otherwise the
  /// FlashAttention-2 kernel runs (bulk reductions of per-warp tiles on sm_90 and later, atomics
  /// before). The fp32 additions from many key blocks make dQ's rounding order vary between
  /// runs; with `options.deterministic` the Hopper split form has no such additions, and the
  /// FlashAttention-2 kernel runs its key blocks one launch after another (each dQ element then
  /// gets at most one addition per launch, in a fixed order), which gives the same bits every
  /// run at a large cost in speed: each launch has only batch × kv-heads CTAs.
  /// On the backend's own stream the call returns without waiting (its scratch is reused in
  /// stream order); on another stream it waits, because its scratch is freed on return.
  public func enqueueBackward(_ arguments: BackwardArguments, on stream: CUDAStream) throws(FlashAttentionError) {
    let shape = arguments.shape
    if shape.batch == 0 { return }
    try checkKernelSupport(shape: shape, dtype: arguments.q.dtype)
    for (tensor, label) in [
      (arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out"),
      (arguments.dOut, "dout"), (arguments.dQ, "dq"), (arguments.dK, "dk"), (arguments.dV, "dv"),
    ] {
      try checkAligned(tensor, label)
    }
    let layout = scratchLayout(arguments)
    if stream === self.stream {
      try workspace.withBuffer(device: device, byteCount: layout.bytes, stream: stream) { (buffer) throws(FlashAttentionError) in
        try enqueueBackward(arguments, scratch: buffer.address, layout: layout, on: stream)
      }
    } else {
      // Another stream may run concurrently with the backend's: private scratch, freed on
      // return, so wait for the kernels first.
      let scratch = try CUDABuffer(device: device, byteCount: layout.bytes)
      try enqueueBackward(arguments, scratch: scratch.address, layout: layout, on: stream)
      try stream.synchronize()
    }
  }

  /// The scratch of one backward call: LSE2 and D per query row, then the dQ accumulator
  /// (all fp32; the accumulator 256-byte aligned, as the bulk reductions need 16 bytes), laid
  /// out for the key/value kernel that will run.
  private func scratchLayout(_ arguments: BackwardArguments) -> ScratchLayout {
    let shape = arguments.shape
    let rows = shape.batch * shape.headsQ * shape.seqlenQ
    let hopper: ScratchLayout.HopperForm? =
      HopperBackward.unsupportedReason(arguments, device: device) != nil
      ? nil
      : HopperBackward.isSplit(headDim: shape.headDim, deterministic: arguments.options.deterministic) ? .split : .fused
    let count: Int
    switch hopper {
    case .split: count = 0
    case .fused: count = shape.batch * shape.seqlenQ * shape.headsQ * shape.headDim
    case nil:
      count = backwardKey(.backwardKeyValue, arguments).dqAccumulatorFloats(
        batch: shape.batch, seqlenQ: shape.seqlenQ, headsQ: shape.headsQ)
    }
    let offset = (2 * rows * 4 + 255) / 256 * 256
    return ScratchLayout(hopper: hopper, accumulatorOffset: offset, accumulatorCount: count, bytes: offset + count * 4)
  }

  /// Which key/value kernel runs, byte offset and float count of the dQ accumulator in the
  /// scratch, and the scratch's size.
  private struct ScratchLayout {
    /// The Hopper kernels' form: fused (accumulator `[batch, seqlenQ, headsQ, headDim]`) or
    /// split (no accumulator); nil: the sm80 kernels.
    enum HopperForm { case fused, split }
    let hopper: HopperForm?
    let accumulatorOffset: Int
    let accumulatorCount: Int
    let bytes: Int
  }

  /// The kernel of `kind` for these arguments on this device.
  private func backwardKey(_ kind: AttentionKernelKey.Kind, _ arguments: BackwardArguments) -> AttentionKernelKey {
    let shape = arguments.shape
    return AttentionKernelKey.make(
      kind: kind, headDim: shape.headDim, headDimV: shape.headDimV, dtype: arguments.q.dtype,
      masked: arguments.mask.isMasking, softcap: arguments.options.softcap > 0, deterministic: false,
      arch: device.arch, tuning: tuning)
  }

  /// Queues the three backward steps using `scratch`, laid out as `layout`.
  private func enqueueBackward(
    _ arguments: BackwardArguments, scratch: UInt64, layout: ScratchLayout, on stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let rows = shape.batch * shape.headsQ * shape.seqlenQ
    let lse2 = scratch
    let delta = lse2 + UInt64(rows * 4)
    let accumulator = scratch + UInt64(layout.accumulatorOffset)
    if layout.accumulatorCount > 0 {
      try device.api.check(
        device.api.cuMemsetD32Async(accumulator, 0, layout.accumulatorCount, stream.handle),
        "cuMemsetD32Async(dQ accumulator)")
    }

    func key(_ kind: AttentionKernelKey.Kind) -> AttentionKernelKey { backwardKey(kind, arguments) }
    func strides(_ tensor: TensorView, into args: inout CUDAKernelArguments) {
      args.append(Int64(tensor.strides[0]))
      args.append(Int64(tensor.strides[1]))
      args.append(Int64(tensor.strides[2]))
    }

    if shape.seqlenQ > 0 {
      let preprocess = key(.backwardPreprocess)
      var args = CUDAKernelArguments()
      args.append(arguments.out.deviceAddress)
      args.append(arguments.dOut.deviceAddress)
      args.append(arguments.lse.deviceAddress)
      args.append(lse2)
      args.append(delta)
      strides(arguments.out, into: &args)
      strides(arguments.dOut, into: &args)
      args.append(Int64(arguments.lse.strides[0]))
      args.append(Int64(arguments.lse.strides[1]))
      args.append(Int32(shape.seqlenQ))
      args.append(Int32(shape.headsQ))
      try loadedFunction(preprocess).launch(
        grid: ((shape.seqlenQ + 3) / 4, shape.headsQ, shape.batch), block: (128, 1, 1),
        arguments: args, stream: stream)
    }

    if let form = layout.hopper {
      try HopperBackward.launchKeyValue(
        arguments, lse2: lse2, delta: delta, accumulator: form == .fused ? accumulator : nil, device: device,
        stream: stream)
      if form == .split {
        try HopperBackward.launchDQ(arguments, lse2: lse2, delta: delta, device: device, stream: stream)
        return
      }
    } else if shape.seqlenK > 0 {
      let (left, right) = windowBounds(arguments.mask)
      let kv = key(.backwardKeyValue)
      var args = CUDAKernelArguments()
      for tensor in [arguments.q, arguments.k, arguments.v, arguments.dOut] { args.append(tensor.deviceAddress) }
      args.append(lse2)
      args.append(delta)
      args.append(accumulator)
      args.append(arguments.dK.deviceAddress)
      args.append(arguments.dV.deviceAddress)
      for tensor in [arguments.q, arguments.k, arguments.v, arguments.dOut, arguments.dK, arguments.dV] {
        strides(tensor, into: &args)
      }
      args.append(Int32(shape.seqlenQ))
      args.append(Int32(shape.seqlenK))
      args.append(Int32(shape.groupSize))
      args.append(arguments.scale)
      args.append(arguments.options.softcap)
      args.append(left)
      args.append(right)
      let blocks = (shape.seqlenK + kv.tile.blockN - 1) / kv.tile.blockN
      let function = try loadedFunction(kv)
      if arguments.options.deterministic {
        for base in 0..<blocks {
          var launchArgs = args
          launchArgs.append(Int32(base))
          try function.launch(
            grid: (1, shape.headsKV, shape.batch), block: (kv.threads, 1, 1),
            sharedMemory: kv.sharedMemoryBytes, arguments: launchArgs, stream: stream)
        }
      } else {
        args.append(Int32(0))
        try function.launch(
          grid: (blocks, shape.headsKV, shape.batch), block: (kv.threads, 1, 1),
          sharedMemory: kv.sharedMemoryBytes, arguments: args, stream: stream)
      }
    }

    if shape.seqlenQ > 0 {
      // The Hopper kernel adds into the atomics layout, which a convert key without a tile reads.
      var convert = key(.backwardConvert)
      if layout.hopper != nil { convert.tile = AttentionKernelKey.untiledConvertTile }
      var args = CUDAKernelArguments()
      args.append(accumulator)
      args.append(arguments.dQ.deviceAddress)
      strides(arguments.dQ, into: &args)
      args.append(Int32(shape.seqlenQ))
      args.append(Int32(shape.headsQ))
      args.append(arguments.scale)
      let pairs = shape.seqlenQ * shape.headsQ * shape.headDim / 2
      try loadedFunction(convert).launch(
        grid: (min((pairs + 255) / 256, 4096), shape.batch, 1), block: (256, 1, 1),
        arguments: args, stream: stream)
    }
  }
}
