import FlashAttentionCore
import _FlashAttentionKernelABI

/// Times KV-cache decoding on the GPU against the device's own copy bandwidth (`bench --grid
/// decode`): a cache of `batch` full sequences, contiguous or paged with a shuffled page table,
/// one query token per sequence, the L2 cache flushed before every timed run (a cache of a few
/// MB would otherwise be read from L2; `L2Flush`). Bandwidth is bytes of K and V read per second.
package struct CUDADecodeTimer {
  package struct Measurement: Sendable, Codable {
    package var batch: Int
    package var cacheTokens: Int
    /// nil: a contiguous cache.
    package var pageSize: Int?
    package var splits: Int
    package var microseconds: Double
    /// Bytes of K and V read per second, GB/s (1e9).
    package var gigabytesPerSecond: Double
    /// The decode kernel's tile (`rows r/warps w/stages s`).
    package var tile: String = ""
    /// The loader the kernel ran with (`cpasync` or `bulk`, after any fallback).
    package var loader: String = ""
    /// What ran before each timed run (`L2Flush`).
    package var flush: String = L2Flush.dirty.rawValue
    /// How the splits were merged: `separate`, `fused`, or `-` with one split.
    package var combine: String = ""
    /// With `readFloor`: the median time of one launch that only reads the same number of bytes
    /// (`l2_sweep` over a buffer of K's and V's size, after the same flush, timed the same way),
    /// the fastest any one-launch decode of this shape could be on this device.
    package var readFloorMicroseconds: Double?
  }

  /// What runs before each timed decode (`bench --grid decode --decode-flush`), outside the
  /// timed window.
  package enum L2Flush: String, Sendable, Hashable, CaseIterable {
    /// A memset of twice the L2 (the measurement since the first decode table): the decode's
    /// data is evicted, but the L2 is left full of dirty lines, whose write-back (up to one L2,
    /// ~50 MB, ~17 µs on an H100) the decode's reads pay inside the timed window.
    case dirty
    /// The same memset, then a read-only sweep (`l2_sweep`) of a second buffer of twice the
    /// L2: the memset's lines are written back before the timed run, and the decode finds the L2
    /// cold and clean, as a serving step does after other layers' reads.
    case clean
    /// Nothing: a cache smaller than the L2 is then read from it; meaningful on caches far
    /// above the L2 only (the old `--decode-keep-l2`).
    case none
  }

  package let backend: CUDABackend
  package var repetitions = 20
  package var warmup = 3
  /// What runs before each timed run, unless `measure` is given another (default `.dirty`,
  /// the memset of twice the L2).
  package var flush = L2Flush.dirty

  package init(backend: CUDABackend) {
    self.backend = backend
  }

  /// The device-to-device copy bandwidth (`cuMemcpyDtoDAsync` of `bytes`), counting bytes read
  /// plus bytes written, GB/s: the median of `repetitions` copies.
  package func copyBandwidth(bytes: Int = 1 << 30) throws(FlashAttentionError) -> Double {
    let device = backend.device
    let stream = backend.stream
    let source = try CUDABuffer(device: device, byteCount: bytes)
    let destination = try CUDABuffer(device: device, byteCount: bytes)
    try source.fill(byte: 0, stream: stream)
    let api = device.api
    let milliseconds = try time { () throws(FlashAttentionError) in
      try api.check(
        api.cuMemcpyDtoDAsync(destination.address, source.address, bytes, stream.handle), "cuMemcpyDtoDAsync_v2")
    }
    return 2 * Double(bytes) / (milliseconds * 1e-3) / 1e9
  }

  /// One decode shape: bf16/fp16 `[batch, 1, headsQ, headDim]` queries against `cacheTokens`
  /// keys per sequence.
  package func measure(
    batch: Int, cacheTokens: Int, pageSize: Int?, headsQ: Int = 32, headsKV: Int = 8, headDim: Int = 128,
    dtype: DType = .bfloat16, numSplits: Int = 0, seed: UInt64 = 1, flush requestedFlush: L2Flush? = nil,
    readFloor: Bool = false
  ) throws(FlashAttentionError) -> Measurement {
    let flush = requestedFlush ?? self.flush
    let device = backend.device
    let stream = backend.stream
    let api = device.api
    let rowsPerBlock = pageSize ?? cacheTokens
    let blocksPerSequence = (cacheTokens + rowsPerBlock - 1) / rowsPerBlock
    let blocks = batch * blocksPerSequence
    let cacheShape = [blocks, rowsPerBlock, headsKV, headDim]
    let cacheBytes = blocks * rowsPerBlock * headsKV * headDim * dtype.byteSize
    let k = try CUDABuffer(device: device, byteCount: cacheBytes)
    let v = try CUDABuffer(device: device, byteCount: cacheBytes)
    // Finite constants (0x3C00 is 1.0 in fp16, 2^-7 in bf16): the speed does not depend on them.
    try api.check(api.cuMemsetD32Async(k.address, 0x3C00_3C00, cacheBytes / 4, stream.handle), "cuMemsetD32Async")
    try api.check(api.cuMemsetD32Async(v.address, 0x3C00_3C00, cacheBytes / 4, stream.handle), "cuMemsetD32Async")
    let q = try CUDABuffer(device: device, byteCount: batch * headsQ * headDim * dtype.byteSize)
    try api.check(api.cuMemsetD32Async(q.address, 0x3C00_3C00, batch * headsQ * headDim / 2, stream.handle), "cuMemsetD32Async")
    let out = try CUDABuffer(device: device, byteCount: batch * headsQ * headDim * dtype.byteSize)
    let lse = try CUDABuffer(device: device, byteCount: batch * headsQ * 4)

    func indexBuffer(_ values: [Int32]) throws(FlashAttentionError) -> (CUDABuffer, IndexTensorView) {
      let host = HostTensor(shape: [max(values.count, 1)], dtype: .float32)
      values.withUnsafeBytes { bytes in
        if let base = bytes.baseAddress { host.storage.copyMemory(from: base, byteCount: bytes.count) }
      }
      let buffer = try CUDABuffer(device: device, byteCount: host.byteCount)
      try buffer.upload(host, stream: stream)
      try stream.synchronize()
      guard let address = UnsafeMutableRawPointer(bitPattern: UInt(buffer.address)) else {
        throw .cuda(message: "cuMemAlloc returned a null address")
      }
      return (buffer, IndexTensorView(baseAddress: address, shape: [values.count], location: .cuda(device: device.ordinal)))
    }
    let seqlens = try indexBuffer([Int32](repeating: Int32(cacheTokens), count: batch))
    var cache = KVCache(
      k: k.view(dtype: dtype, shape: cacheShape), v: v.view(dtype: dtype, shape: cacheShape), seqlens: seqlens.1)
    var table: (CUDABuffer, IndexTensorView)?
    if pageSize != nil {
      // Pages in a shuffled order, as a serving engine's allocator leaves them.
      var generator = SplitMixGenerator(state: seed)
      let order = Array(0..<blocks).shuffled(using: &generator).map { Int32($0) }
      let uploaded = try indexBuffer(order)
      var view = uploaded.1
      view.shape = [batch, blocksPerSequence]
      view.strides = [blocksPerSequence, 1]
      cache.pageTable = view
      table = uploaded
    }
    let arguments = try KVCacheForwardArguments(
      q: q.view(dtype: dtype, shape: [batch, 1, headsQ, headDim]), cache: cache,
      out: out.view(dtype: dtype, shape: [batch, 1, headsQ, headDim]),
      lse: lse.view(dtype: .float32, shape: [batch, headsQ, 1]), options: AttentionOptions(), numSplits: numSplits)
    let plan = backend.decodePlan(arguments)
    let flushBytes = max(2 * device.l2CacheBytes, 1 << 20)
    let memset = flush == .none ? nil : try CUDABuffer(device: device, byteCount: flushBytes)
    let sweep = flush == .clean ? try CUDABuffer(device: device, byteCount: flushBytes) : nil
    let sweepKernel = flush == .clean || readFloor ? try device.loadedKernel(L2SweepKey(arch: device.arch)) : nil
    if let sweep { try sweep.fill(byte: 0, stream: stream) }
    func sweepLaunch(_ buffer: CUDABuffer, byteCount: Int) throws(FlashAttentionError) {
      guard let sweepKernel else { return }
      let parameters = FAL2SweepParams(
        data: UnsafePointer<UInt64>(bitPattern: UInt(buffer.address)), count: Int64(byteCount / 16))
      try sweepKernel.launch(
        grid: (max(1, device.multiprocessors) * 8, 1, 1), block: (L2SweepKey.blockThreads, 1, 1),
        parameters: parameters, stream: stream)
    }
    let beforeEachRun = { () throws(FlashAttentionError) in
      if let memset {
        try api.check(api.cuMemsetD8Async(memset.address, 0, memset.byteCount, stream.handle), "cuMemsetD8Async")
      }
      if let sweep { try sweepLaunch(sweep, byteCount: sweep.byteCount) }
    }
    let milliseconds = try time(
      before: beforeEachRun, { () throws(FlashAttentionError) in try backend.enqueueKVCacheForward(arguments, on: stream) })
    let fused = try backend.splitCounters(plan: plan, shape: arguments.shape, stream: stream) != nil
    // The read floor: the same bytes as K and V, one read-only launch, the same flush and timing.
    var floorMilliseconds: Double?
    if readFloor {
      let floorBytes = 2 * cacheBytes
      let floorBuffer = try CUDABuffer(device: device, byteCount: floorBytes)
      try floorBuffer.fill(byte: 0, stream: stream)
      floorMilliseconds = try time(
        before: beforeEachRun, { () throws(FlashAttentionError) in try sweepLaunch(floorBuffer, byteCount: floorBytes) })
      withExtendedLifetime(floorBuffer) {}
    }
    withExtendedLifetime((seqlens, table, k, v, q, out, lse, memset, sweep)) {}
    let bytes = Double(batch) * Double(cacheTokens) * Double(headsKV * headDim * 2 * dtype.byteSize)
    return Measurement(
      batch: batch, cacheTokens: cacheTokens, pageSize: pageSize, splits: plan.splits,
      microseconds: milliseconds * 1000, gigabytesPerSecond: bytes / (milliseconds * 1e-3) / 1e9,
      tile: plan.key.tile.description, loader: plan.key.loader.rawValue, flush: flush.rawValue,
      combine: plan.splits == 1 ? "-" : fused ? DecodeCombine.fused.rawValue : DecodeCombine.separate.rawValue,
      readFloorMicroseconds: floorMilliseconds.map { $0 * 1000 })
  }

  private func time(
    before: () throws(FlashAttentionError) -> Void = {}, _ body: () throws(FlashAttentionError) -> Void
  ) throws(FlashAttentionError) -> Double {
    let stream = backend.stream
    for _ in 0..<warmup {
      try before()
      try body()
    }
    try stream.synchronize()
    var samples: [Double] = []
    let start = try CUDAEvent(device: backend.device)
    let end = try CUDAEvent(device: backend.device)
    for _ in 0..<max(1, repetitions) {
      try before()
      try start.record(on: stream)
      try body()
      try end.record(on: stream)
      samples.append(Double(try end.elapsedMilliseconds(since: start)))
    }
    samples.sort()
    return samples[samples.count / 2]
  }
}

/// SplitMix64, for the page order.
private struct SplitMixGenerator: RandomNumberGenerator {
  var state: UInt64

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
