import FlashAttentionCore
import _FlashAttentionKernelABI

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

    if shape.seqlenQ > 0 {
      let preprocess = key(.backwardPreprocess)
      let parameters = FABackwardPreprocessParams(
        o: devicePointer(arguments.out.deviceAddress), dout: devicePointer(arguments.dOut.deviceAddress),
        lse: devicePointer(arguments.lse.deviceAddress), lse2: deviceMutablePointer(lse2),
        delta: deviceMutablePointer(delta), o_strides: FAStrides(arguments.out),
        dout_strides: FAStrides(arguments.dOut), lse_strides: FAStatsStrides(arguments.lse),
        seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ))
      try loadedFunction(preprocess).launch(
        grid: ((shape.seqlenQ + 3) / 4, shape.headsQ, shape.batch), block: (128, 1, 1),
        parameters: parameters, stream: stream)
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
      let (left, right) = kernelWindow(arguments.mask)
      let kv = key(.backwardKeyValue)
      var parameters = FABackwardKeyValueParams(
        q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
        v: devicePointer(arguments.v.deviceAddress), dout: devicePointer(arguments.dOut.deviceAddress),
        lse2: devicePointer(lse2), delta: devicePointer(delta), dq_accum: deviceMutablePointer(accumulator),
        dk: deviceMutablePointer(arguments.dK.deviceAddress), dv: deviceMutablePointer(arguments.dV.deviceAddress),
        q_strides: FAStrides(arguments.q), k_strides: FAStrides(arguments.k), v_strides: FAStrides(arguments.v),
        dout_strides: FAStrides(arguments.dOut), dk_strides: FAStrides(arguments.dK),
        dv_strides: FAStrides(arguments.dV), seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK),
        group: Int32(shape.groupSize), scale: arguments.scale, softcap: arguments.options.softcap,
        window_left: left, window_right: right, key_block_base: 0)
      let blocks = (shape.seqlenK + kv.tile.blockN - 1) / kv.tile.blockN
      let function = try loadedFunction(kv)
      if arguments.options.deterministic {
        for base in 0..<blocks {
          parameters.key_block_base = Int32(base)
          try function.launch(
            grid: (1, shape.headsKV, shape.batch), block: (kv.threads, 1, 1),
            sharedMemory: kv.sharedMemoryBytes, parameters: parameters, stream: stream)
        }
      } else {
        try function.launch(
          grid: (blocks, shape.headsKV, shape.batch), block: (kv.threads, 1, 1),
          sharedMemory: kv.sharedMemoryBytes, parameters: parameters, stream: stream)
      }
    }

    if shape.seqlenQ > 0 {
      // The Hopper kernel adds into the atomics layout, which a convert key without a tile reads.
      var convert = key(.backwardConvert)
      if layout.hopper != nil { convert.tile = AttentionKernelKey.untiledConvertTile }
      let parameters = FABackwardConvertParams(
        dq_accum: devicePointer(accumulator), dq: deviceMutablePointer(arguments.dQ.deviceAddress),
        dq_strides: FAStrides(arguments.dQ), seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ),
        scale: arguments.scale)
      let pairs = shape.seqlenQ * shape.headsQ * shape.headDim / 2
      try loadedFunction(convert).launch(
        grid: (min((pairs + 255) / 256, 4096), shape.batch, 1), block: (256, 1, 1),
        parameters: parameters, stream: stream)
    }
  }
}
