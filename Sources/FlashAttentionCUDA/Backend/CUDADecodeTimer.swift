import FlashAttentionCore

/// Times KV-cache decoding on the GPU against the device's own copy bandwidth (`bench --grid
/// decode`): a cache of `batch` full sequences, contiguous or paged with a shuffled page table,
/// one query token per sequence, the L2 cache flushed before every timed run (a cache of a few
/// MB would otherwise be read from L2). Bandwidth is bytes of K and V read per second.
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
  }

  package let backend: CUDABackend
  package var repetitions = 20
  package var warmup = 3
  /// Whether each timed run starts after a memset of twice the L2 (the default). The memset
  /// leaves the L2 full of dirty lines that the decode's reads write back, up to one L2 (50 MB on
  /// an H100, ~17 µs of DRAM time): false measures that share, on caches well above the L2.
  package var flushesL2 = true

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
    dtype: DType = .bfloat16, numSplits: Int = 0, seed: UInt64 = 1
  ) throws(FlashAttentionError) -> Measurement {
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
    let flush = try CUDABuffer(device: device, byteCount: max(2 * device.l2CacheBytes, 1 << 20))
    let milliseconds = try time(
      before: { () throws(FlashAttentionError) in
        if flushesL2 {
          try api.check(api.cuMemsetD8Async(flush.address, 0, flush.byteCount, stream.handle), "cuMemsetD8Async")
        }
      },
      { () throws(FlashAttentionError) in try backend.enqueueKVCacheForward(arguments, on: stream) })
    withExtendedLifetime((seqlens, table, k, v, q, out, lse)) {}
    let bytes = Double(batch) * Double(cacheTokens) * Double(headsKV * headDim * 2 * dtype.byteSize)
    return Measurement(
      batch: batch, cacheTokens: cacheTokens, pageSize: pageSize, splits: plan.splits,
      microseconds: milliseconds * 1000, gigabytesPerSecond: bytes / (milliseconds * 1e-3) / 1e9,
      tile: plan.key.tile.description, loader: plan.key.loader.rawValue)
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
