import FlashAttentionCore

extension CUDABackend {
  /// KV-cache attention (`flash_attn_with_kvcache`): the new keys and values appended to the
  /// cache in place, then the queries against each sequence's keys, split along the keys and
  /// merged by LSE where the batch alone would leave SMs idle.
  ///
  /// Device views run on `stream` (the caller's; the call returns without waiting) or on the
  /// backend's own stream (the call waits). Host views are staged through device memory (cache
  /// and index data included) and the appended cache is copied back; they take no stream.
  /// - Throws: `.unsupported` for what the kernels cannot run (fp32 storage, head dims, sizes,
  ///   unaligned rows), `.invalidArgument` for a stream with host views or of another device.
  public func kvCacheForward(_ arguments: KVCacheForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    try checkProblem(arguments.shape, dtype: arguments.q.dtype)
    switch arguments.q.location {
    case .cuda:
      if let stream {
        try enqueueKVCacheForward(arguments, on: CUDAStream(borrowing: OpaquePointer(stream.handle), device: device))
      } else {
        try enqueueKVCacheForward(arguments, on: self.stream)
        try self.stream.synchronize()
      }
    case .host:
      if stream != nil {
        throw .invalidArgument(
          name: "stream", value: "a caller's stream", reason: "host tensors run synchronously; pass no stream")
      }
      try kvCacheForwardStaged(arguments)
    }
  }

  /// Queues a KV-cache call on `stream` (device views only) and returns without waiting: the
  /// append when there are new tokens, the decode kernel, and the merge of its splits, with the
  /// splits' partial results in scratch from the device's pool in the stream's order.
  package func enqueueKVCacheForward(
    _ arguments: KVCacheForwardArguments, on stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    try checkProblem(shape, dtype: arguments.q.dtype)
    var views = [(arguments.q, "q"), (arguments.cache.k, "k_cache"), (arguments.cache.v, "v_cache"), (arguments.out, "out")]
    if let kNew = arguments.kNew, let vNew = arguments.vNew { views += [(kNew, "k"), (vNew, "v")] }
    try checkDeviceCall(views, location: arguments.q.location, stream: stream)
    try CUDACallChecks.kvCache(arguments, backend: name)
    if arguments.options.alibiSlopes != nil {
      // Refused before the append, so a refused call leaves the cache as it was.
      throw .unsupported(backend: name, feature: "ALiBi in the KV-cache (decode) kernels")
    }
    try DecodeLaunch.append(arguments, device: device, stream: stream)
    if shape.seqlenQ == 0 || shape.headsQ == 0 { return }
    let plan = decodePlan(arguments)
    guard plan.splits > 1 else {
      return try DecodeLaunch.decode(arguments, plan: plan, scratch: nil, device: device, stream: stream)
    }
    guard let bytes = DecodeScratch.bytes(shape: shape, splits: plan.splits) else {
      throw .unsupported(backend: name, feature: "\(plan.splits) key splits of this shape (the partial outputs overflow)")
    }
    let counters = try splitCounters(plan: plan, shape: shape, stream: stream)
    try DeviceScratchPool.shared(for: device).withScratch(bytes, on: stream) { (base) throws(FlashAttentionError) in
      try DecodeLaunch.decode(
        arguments, plan: plan, scratch: DecodeScratch(base: base, shape: shape, splits: plan.splits),
        splitCounters: counters, device: device, stream: stream)
    }
  }

  /// The counters of a fused merge of `plan`'s splits on `stream` (`--decode-combine fused`), or
  /// nil for the merge's own launch: the tuning's choice, a stream being captured, or a grid of
  /// more row blocks than the counters hold.
  package func splitCounters(plan: DecodePlan, shape: AttentionShape, stream: CUDAStream) throws(FlashAttentionError) -> UInt64? {
    guard plan.splits > 1, tuning.decodeCombine == .fused else { return nil }
    return try DecodeSplitCounters.shared(for: device).counters(for: stream, groups: plan.mergeGroups(shape))
  }

  /// The kernels a KV-cache call runs on this backend: the split count follows the longest
  /// sequence when the lengths are on the host, the cache's capacity otherwise.
  package func decodePlan(_ arguments: KVCacheForwardArguments) -> DecodePlan {
    let maxKeys = arguments.sequences.map { $0.map(\.keyCount).max() ?? 0 } ?? arguments.shape.seqlenK
    let cache = arguments.cache
    // Host views are staged into aligned device copies before they run; their own addresses
    // say nothing about the copies', so only the strides and head dims decide for them.
    let onDevice = arguments.q.location != .host
    let loader = tuning.decodeLoader.effective(
      arch: device.arch, headDims: (arguments.shape.headDim, arguments.shape.headDimV),
      caches: [cache.k, cache.v].map { (address: onDevice ? $0.deviceAddress : 0, strides: $0.strides) })
    return DecodePlan.make(
      shape: arguments.shape, dtype: arguments.q.dtype, options: arguments.options, paged: cache.isPaged,
      maxKeys: maxKeys, requestedSplits: arguments.numSplits, arch: device.arch,
      multiprocessors: device.multiprocessors, tuning: tuning.decodeTile, loader: loader)
  }

  /// Host views: everything uploaded (index data packed), the call run on the backend's
  /// stream, O and the LSE copied back, and the cache too when the call appended to it.
  func kvCacheForwardStaged(_ arguments: KVCacheForwardArguments) throws(FlashAttentionError) {
    var staging = try DeviceStaging(device: device, stream: stream)
    do throws(FlashAttentionError) {
      let cache = arguments.cache
      var deviceCache = KVCache(
        k: try staging.upload(cache.k), v: try staging.upload(cache.v), seqlens: try staging.uploadCacheIndex(cache.seqlens))
      if let batchIndex = cache.batchIndex { deviceCache.batchIndex = try staging.uploadCacheIndex(batchIndex) }
      if let pageTable = cache.pageTable { deviceCache.pageTable = try staging.uploadCacheIndex(pageTable) }
      var kNew: TensorView?
      var vNew: TensorView?
      if let k = arguments.kNew, let v = arguments.vNew {
        kNew = try staging.upload(k)
        vNew = try staging.upload(v)
      }
      let deviceArguments = try KVCacheForwardArguments(
        q: staging.upload(arguments.q), cache: deviceCache, kNew: kNew, vNew: vNew, out: staging.output(like: arguments.out), lse: staging.output(like: arguments.lse),
        options: arguments.options, numSplits: arguments.numSplits == 0 ? automaticSplits(arguments) : arguments.numSplits)
      try enqueueKVCacheForward(deviceArguments, on: stream)
      try staging.download(deviceArguments.out, into: arguments.out)
      try staging.download(deviceArguments.lse, into: arguments.lse)
      if arguments.seqlenNew > 0 {
        try staging.download(deviceCache.k, into: cache.k)
        try staging.download(deviceCache.v, into: cache.v)
      }
    } catch {
      try? staging.release()
      throw error
    }
    try staging.release()
  }

  /// The automatic split count of a host call, from its checked lengths (the device copy of the
  /// arguments no longer has them).
  private func automaticSplits(_ arguments: KVCacheForwardArguments) -> Int {
    decodePlan(arguments).splits
  }
}

extension CUDACallChecks {
  /// What the decode kernels' 32-bit indices and grids take beyond `problem`.
  static func kvCache(_ arguments: KVCacheForwardArguments, backend: String) throws(FlashAttentionError) {
    let shape = arguments.shape
    let limit = Int(Int32.max)
    // Packed rows (query tokens × group) and append chunks are 32-bit in the kernels.
    if shape.seqlenQ * shape.groupSize > limit / 2 {
      throw .unsupported(backend: backend, feature: "seqlen_q × (heads_q / heads_kv) = \(shape.seqlenQ * shape.groupSize) packed rows")
    }
    if arguments.seqlenNew * shape.headsKV * (shape.headDim + shape.headDimV) / 8 > limit - 256 {
      throw .unsupported(backend: backend, feature: "\(arguments.seqlenNew) new tokens of \(shape.headsKV) heads in one append")
    }
    let cache = arguments.cache
    for (index, label) in [(cache.seqlens, "cache_seqlens"), (cache.batchIndex, "cache_batch_idx"), (cache.pageTable, "page_table")]
    where index.map({ UInt(bitPattern: $0.baseAddress) % 4 != 0 }) ?? false {
      throw .invalidArgument(name: label, value: "\(index.map { $0.baseAddress } as Any)", reason: "int32 index data must be 4-byte aligned")
    }
    if shape.headsKV > 65535 {
      throw .unsupported(backend: backend, feature: "heads_kv = \(shape.headsKV) (the kernels take up to 65535)")
    }
  }
}

extension DeviceStaging {
  /// A contiguous device copy of host int32 index data (a vector or a page table).
  mutating func uploadCacheIndex(_ index: IndexTensorView) throws(FlashAttentionError) -> IndexTensorView {
    let values: [Int32]
    switch index.shape.count {
    case 1: values = (0..<index.shape[0]).map { index[$0] }
    default: values = (0..<index.shape[0]).flatMap { row in (0..<index.shape[1]).map { index[row, $0] } }
    }
    // The bytes travel as a float32 tensor of the same size: the copy never looks at them.
    let host = HostTensor(shape: [max(values.count, 1)], dtype: .float32)
    values.withUnsafeBytes { host.storage.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(host.storage), byteCount: $0.count) }
    let copy = try upload(host.view)
    guard let address = UnsafeMutableRawPointer(bitPattern: UInt(copy.deviceAddress)) else {
      throw .cuda(message: "the scratch pool returned a null address")
    }
    return IndexTensorView(baseAddress: address, shape: index.shape, location: .cuda(device: device.ordinal))
  }
}
