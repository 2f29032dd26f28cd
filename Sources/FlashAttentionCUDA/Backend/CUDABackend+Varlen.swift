import FlashAttentionCore

/// Packed variable-length batches (`flash_attn_varlen_func`) on the GPU: the kernels compiled
/// with `FA_VARLEN` (the Hopper forward on sm_90a where it covers the call, the FlashAttention-2
/// kernels elsewhere and for the backward) read each sequence's rows from `cu_seqlens` (and
/// `seqused`), then `flash_varlen_clear` gives the rows no sequence computes the CPU backend's
/// result (output and gradients 0, LSE -inf). Device views run in place on the caller's stream
/// or the backend's own; host views (index data included) are staged through device memory.
extension CUDABackend: VariableLengthBackend {
  public func varlenForward(_ arguments: VarlenForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try checkVarlenProblem(arguments)
    switch arguments.q.location {
    case .cuda:
      if let stream {
        try enqueueVarlenForward(arguments, on: CUDAStream(borrowing: OpaquePointer(stream.handle), device: device))
      } else {
        try enqueueVarlenForward(arguments, on: self.stream)
        try self.stream.synchronize()
      }
    case .host:
      try Self.refuseStreamForHost(stream)
      try varlenForwardStaged(arguments)
    }
  }

  public func varlenBackward(_ arguments: VarlenBackwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try checkVarlenProblem(arguments.forward)
    switch arguments.forward.q.location {
    case .cuda:
      if let stream {
        try enqueueVarlenBackward(arguments, on: CUDAStream(borrowing: OpaquePointer(stream.handle), device: device))
      } else {
        try enqueueVarlenBackward(arguments, on: self.stream)
        try self.stream.synchronize()
      }
    case .host:
      try Self.refuseStreamForHost(stream)
      try varlenBackwardStaged(arguments)
    }
  }

  /// Queues a varlen forward of device views on `stream` and returns without waiting.
  /// `hostSpans`: the checked spans when the index data came from the host (the clear kernel is
  /// skipped when every row is computed).
  package func enqueueVarlenForward(
    _ arguments: VarlenForwardArguments, on stream: CUDAStream, hostSpans: [SequenceSpan]? = nil
  ) throws(FlashAttentionError) {
    try checkVarlenProblem(arguments)
    try checkDeviceCall(
      [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v"), (arguments.out, "out")],
      location: arguments.q.location, stream: stream)
    try CUDACallChecks.varlenLSE(arguments.lse, backend: name)
    let index = try varlenIndex(arguments.sequences)
    switch varlenForwardPlan(arguments) {
    case let .hopper(key, persistent):
      try VarlenLaunch.hopperForward(
        arguments, index: index, key: key, persistent: persistent, schedule: tuning.varlenSchedule, device: device,
        stream: stream)
    case let .flashAttention2(key):
      try VarlenLaunch.forward(arguments, index: index, key: key, device: device, stream: stream)
    }
    if Self.rowsLeftOut(hostSpans ?? arguments.spans, totalQ: arguments.q.shape[0], totalK: nil) {
      try VarlenLaunch.clear(
        arguments.out, lse: arguments.lse, cuSeqlens: index.cuSeqlensQ, seqUsed: index.seqUsedQ,
        batch: arguments.shape.batch, device: device, stream: stream)
    }
  }

  /// Queues a varlen backward of device views on `stream` (scratch from the device's pool in the
  /// stream's order) and returns without waiting.
  package func enqueueVarlenBackward(
    _ arguments: VarlenBackwardArguments, on stream: CUDAStream, hostSpans: [SequenceSpan]? = nil
  ) throws(FlashAttentionError) {
    let f = arguments.forward
    try checkVarlenProblem(f)
    try checkDeviceCall(
      [
        (f.q, "q"), (f.k, "k"), (f.v, "v"), (f.out, "out"), (arguments.dOut, "dout"), (arguments.dQ, "dq"),
        (arguments.dK, "dk"), (arguments.dV, "dv"),
      ], location: f.q.location, stream: stream)
    try CUDACallChecks.varlenLSE(f.lse, backend: name)
    let index = try varlenIndex(f.sequences)
    let plan = varlenBackwardPlan(arguments)
    // Laid out as for a padded batch of the longest sequences (max_seqlen_q rows per (batch,
    // head)), or with the packed schedule on the Hopper kernels at each sequence's own rows.
    let packedRows = VarlenLaunch.packsScratch(plan: plan, schedule: tuning.varlenSchedule) ? f.q.shape[0] : nil
    let layout = BackwardScratch.Layout(plan: plan, shape: f.shape, packedRows: packedRows)
    try DeviceScratchPool.shared(for: device).withScratch(layout.bytes, on: stream) { (address) throws(FlashAttentionError) in
      try VarlenLaunch.backward(
        arguments, index: index, plan: plan, scratch: BackwardScratch(address: address, layout: layout, shape: f.shape),
        schedule: tuning.varlenSchedule, device: device, stream: stream)
    }
    let spans = hostSpans ?? f.spans
    let batch = f.shape.batch
    if Self.rowsLeftOut(spans, totalQ: f.q.shape[0], totalK: nil) {
      try VarlenLaunch.clear(
        arguments.dQ, lse: nil, cuSeqlens: index.cuSeqlensQ, seqUsed: index.seqUsedQ, batch: batch, device: device,
        stream: stream)
    }
    if Self.rowsLeftOut(spans, totalQ: nil, totalK: f.k.shape[0]) {
      for gradient in [arguments.dK, arguments.dV] {
        try VarlenLaunch.clear(
          gradient, lse: nil, cuSeqlens: index.cuSeqlensK, seqUsed: index.seqUsedK, batch: batch, device: device,
          stream: stream)
      }
    }
  }

  /// The kernels a varlen backward runs on this backend's device (for tools and tests).
  package func varlenBackwardPlan(_ arguments: VarlenBackwardArguments) -> BackwardKernelPlan {
    KernelSelection.varlenBackward(arguments, arch: device.arch, tuning: tuning)
  }

  /// The kernel a varlen forward runs on this backend's device (for tools and tests).
  package func varlenForwardPlan(_ arguments: VarlenForwardArguments) -> ForwardKernelPlan {
    KernelSelection.varlenForward(arguments, arch: device.arch, tuning: tuning)
  }

  /// Whether some rows of q (`totalQ`) or k (`totalK`) belong to no computed sequence: unknown
  /// (device index data) counts as yes.
  static func rowsLeftOut(_ spans: [SequenceSpan]?, totalQ: Int?, totalK: Int?) -> Bool {
    guard let spans else { return true }
    if let totalQ {
      let end = spans.last.map { $0.queryStart + $0.queryLength } ?? 0
      return end < totalQ || spans.contains { $0.queriesUsed < $0.queryLength }
    }
    if let totalK {
      let end = spans.last.map { $0.keyStart + $0.keyLength } ?? 0
      return end < totalK || spans.contains { $0.keysUsed < $0.keyLength }
    }
    return false
  }

  private static func refuseStreamForHost(_ stream: CallerStream?) throws(FlashAttentionError) {
    if stream != nil {
      throw .invalidArgument(
        name: "stream", value: "a caller's stream", reason: "host tensors run synchronously; pass no stream")
    }
  }

  private func checkVarlenProblem(_ arguments: VarlenForwardArguments) throws(FlashAttentionError) {
    try checkProblem(arguments.shape, dtype: arguments.q.dtype)
    try CUDACallChecks.features(arguments.options, backend: name)
    if arguments.options.alibiSlopes != nil {
      throw .unsupported(backend: name, feature: "ALiBi in the variable-length kernels (the CPU backend runs it)")
    }
    try CUDACallChecks.varlenSizes(
      totalQ: arguments.q.shape[0], totalK: arguments.k.shape[0], batch: arguments.shape.batch, backend: name)
  }

  /// The device addresses of the index data, checked for what the kernels read: int32 vectors
  /// with unit stride on this device, 4-byte aligned.
  private func varlenIndex(_ sequences: VarlenSequences) throws(FlashAttentionError) -> VarlenIndexAddresses {
    func address(_ view: IndexTensorView?, _ label: String) throws(FlashAttentionError) -> UInt64 {
      guard let view else { return 0 }
      try CUDACallChecks.deviceIndex(view, label, ordinal: device.ordinal, backend: name)
      return UInt64(UInt(bitPattern: view.baseAddress))
    }
    return VarlenIndexAddresses(
      cuSeqlensQ: try address(sequences.cuSeqlensQ, "cu_seqlens_q"),
      cuSeqlensK: try address(sequences.cuSeqlensK, "cu_seqlens_k"),
      seqUsedQ: try address(sequences.seqUsedQ, "seqused_q"), seqUsedK: try address(sequences.seqUsedK, "seqused_k"))
  }
}

extension CUDACallChecks {
  /// Packed row indices are 32-bit in the kernels; the clear kernel's grid has a row per
  /// sequence plus one.
  static func varlenSizes(totalQ: Int, totalK: Int, batch: Int, backend: String) throws(FlashAttentionError) {
    for (value, label) in [(totalQ, "total_q"), (totalK, "total_k")] where value > maxSequenceLength {
      throw .unsupported(backend: backend, feature: "\(label) = \(value) (the kernels take up to 2^29 tokens)")
    }
    if batch >= 65535 {
      throw .unsupported(backend: backend, feature: "batch = \(batch) sequences (the kernels take up to 65534)")
    }
  }

  /// The kernels write the LSE `(heads, total)` with a unit column stride.
  static func varlenLSE(_ lse: TensorView, backend: String) throws(FlashAttentionError) {
    if lse.shape[1] > 1 && lse.strides[1] != 1 {
      throw .unsupported(backend: backend, feature: "lse with column stride \(lse.strides[1]) (device LSE columns must be contiguous)")
    }
  }

  /// Device index data: a unit-stride int32 vector on `ordinal`, 4-byte aligned.
  static func deviceIndex(
    _ view: IndexTensorView, _ label: String, ordinal: Int, backend: String
  ) throws(FlashAttentionError) {
    if case let .cuda(other) = view.location, other != ordinal {
      throw .invalidArgument(name: "\(label).location", value: "cuda:\(other)", reason: "this backend runs on cuda:\(ordinal)")
    }
    if view.shape[0] > 1 && view.strides[0] != 1 {
      throw .unsupported(backend: backend, feature: "\(label) with stride \(view.strides[0]) (device index data must be contiguous)")
    }
    if UInt(bitPattern: view.baseAddress) % 4 != 0 {
      throw .invalidArgument(name: "\(label)", value: "\(view.baseAddress)", reason: "int32 data must be 4-byte aligned")
    }
  }
}

extension CUDABackend {
  func varlenForwardStaged(_ arguments: VarlenForwardArguments) throws(FlashAttentionError) {
    var staging = try DeviceStaging(device: device, stream: stream)
    do throws(FlashAttentionError) {
      let deviceArguments = try VarlenForwardArguments(
        q: staging.upload(arguments.q), k: staging.upload(arguments.k), v: staging.upload(arguments.v),
        out: staging.output(like: arguments.out), lse: staging.output(like: arguments.lse),
        sequences: staging.upload(arguments.sequences), options: arguments.options)
      try enqueueVarlenForward(deviceArguments, on: stream, hostSpans: arguments.spans)
      try staging.download(deviceArguments.out, into: arguments.out)
      try staging.download(deviceArguments.lse, into: arguments.lse)
    } catch {
      try? staging.release()
      throw error
    }
    try staging.release()
  }

  func varlenBackwardStaged(_ arguments: VarlenBackwardArguments) throws(FlashAttentionError) {
    let f = arguments.forward
    var staging = try DeviceStaging(device: device, stream: stream)
    do throws(FlashAttentionError) {
      let deviceArguments = try VarlenBackwardArguments(
        q: staging.upload(f.q), k: staging.upload(f.k), v: staging.upload(f.v), out: staging.upload(f.out),
        lse: staging.upload(f.lse), dOut: staging.upload(arguments.dOut), dQ: staging.output(like: arguments.dQ),
        dK: staging.output(like: arguments.dK), dV: staging.output(like: arguments.dV),
        sequences: staging.upload(f.sequences), options: f.options)
      try enqueueVarlenBackward(deviceArguments, on: stream, hostSpans: f.spans)
      try staging.download(deviceArguments.dQ, into: arguments.dQ)
      try staging.download(deviceArguments.dK, into: arguments.dK)
      try staging.download(deviceArguments.dV, into: arguments.dV)
    } catch {
      try? staging.release()
      throw error
    }
    try staging.release()
  }
}

extension DeviceStaging {
  /// Device copies of host index data (the same maxima).
  mutating func upload(_ sequences: VarlenSequences) throws(FlashAttentionError) -> VarlenSequences {
    VarlenSequences(
      cuSeqlensQ: try upload(sequences.cuSeqlensQ), cuSeqlensK: try upload(sequences.cuSeqlensK),
      maxSeqlenQ: sequences.maxSeqlenQ, maxSeqlenK: sequences.maxSeqlenK,
      seqUsedQ: try sequences.seqUsedQ.map { (view) throws(FlashAttentionError) in try upload(view) },
      seqUsedK: try sequences.seqUsedK.map { (view) throws(FlashAttentionError) in try upload(view) })
  }

  /// A contiguous device copy of a host int32 vector: its values staged as the 4-byte elements
  /// of a float32-typed scratch view (only the bytes matter).
  mutating func upload(_ index: IndexTensorView) throws(FlashAttentionError) -> IndexTensorView {
    let values = index.hostValues.map { Int32(truncatingIfNeeded: $0) }
    let bytes = HostTensor(shape: [values.count], dtype: .float32)
    values.withUnsafeBytes { source in
      if let base = source.baseAddress { bytes.storage.copyMemory(from: base, byteCount: source.count) }
    }
    let staged = try upload(bytes.view)
    return IndexTensorView(
      baseAddress: staged.baseAddress, shape: [values.count], strides: [1], location: staged.location)
  }
}
