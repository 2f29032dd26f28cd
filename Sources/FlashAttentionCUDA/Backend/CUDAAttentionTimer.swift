import FlashAttentionCore

/// Times the backend's forward and backward passes on device-resident random inputs with CUDA
/// events: warm-up, then the median of `repetitions` runs. The working set of one problem on
/// the FlashAttention grid (16k tokens x 2048 hidden, several tensors) exceeds the L2 cache, so
/// repeated runs do not measure the cache.
package struct CUDAAttentionTimer {
  package struct Measurement: Sendable {
    package var shape: AttentionShape
    package var causal: Bool
    package var dtype: DType
    package var forwardMilliseconds: Double
    package var backwardMilliseconds: Double?
    /// FLOPs by PERFORMANCE.md's count (causal halves it; backward is 2.5x forward).
    package var forwardFLOPs: Double

    package var forwardTFLOPs: Double { forwardFLOPs / forwardMilliseconds / 1e9 }
    package var backwardTFLOPs: Double? { backwardMilliseconds.map { 2.5 * forwardFLOPs / $0 / 1e9 } }
  }

  package let backend: CUDABackend
  package var repetitions = 20
  package var warmup = 3

  package init(backend: CUDABackend) {
    self.backend = backend
  }

  package func measure(
    shape: AttentionShape, causal: Bool, dtype: DType, backward: Bool, seed: UInt64 = 1
  ) throws(FlashAttentionError) -> Measurement {
    let device = backend.device
    let stream = backend.stream
    func random(_ shape: [Int], _ salt: UInt64) throws(FlashAttentionError) -> (CUDABuffer, TensorView) {
      let host = HostTensor(shape: shape, dtype: dtype)
      var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ salt
      let bits = host.storage.assumingMemoryBound(to: UInt16.self)
      for index in 0..<host.elementCount {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let value = Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        bits[index] = dtype == .bfloat16 ? BFloat16Conversion.bits(from: value) : Float16(value).bitPattern
      }
      let buffer = try CUDABuffer(device: device, byteCount: host.byteCount)
      try buffer.upload(host, stream: stream)
      return (buffer, buffer.view(dtype: dtype, shape: shape))
    }
    func empty(_ shape: [Int], _ type: DType) throws(FlashAttentionError) -> (CUDABuffer, TensorView) {
      let buffer = try CUDABuffer(device: device, byteCount: shape.reduce(1, *) * type.byteSize)
      return (buffer, buffer.view(dtype: type, shape: shape))
    }
    let q = try random(shape.qShape, 1)
    let k = try random(shape.kShape, 2)
    let v = try random(shape.vShape, 3)
    let o = try empty(shape.oShape, dtype)
    let lse = try empty(shape.lseShape, .float32)
    let options = AttentionOptions(causal: causal)
    let forward = try ForwardArguments(q: q.1, k: k.1, v: v.1, out: o.1, lse: lse.1, options: options)
    let forwardTime = try time { () throws(FlashAttentionError) in try backend.enqueueForward(forward, on: stream) }
    var backwardTime: Double?
    if backward {
      let dOut = try random(shape.oShape, 4)
      let dQ = try empty(shape.qShape, dtype)
      let dK = try empty(shape.kShape, dtype)
      let dV = try empty(shape.vShape, dtype)
      let arguments = try BackwardArguments(
        q: q.1, k: k.1, v: v.1, out: o.1, lse: lse.1, dOut: dOut.1, dQ: dQ.1, dK: dK.1, dV: dV.1, options: options)
      backwardTime = try time { () throws(FlashAttentionError) in try backend.enqueueBackward(arguments, on: stream) }
    }
    let mask = AttentionMask(options: options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    let visible = causal && shape.seqlenQ == shape.seqlenK ? shape.seqlenQ * shape.seqlenK / 2 : mask.visibleScoreCount
    return Measurement(
      shape: shape, causal: causal, dtype: dtype, forwardMilliseconds: forwardTime,
      backwardMilliseconds: backwardTime, forwardFLOPs: shape.forwardFLOPs(visibleScores: visible))
  }

  private func time(_ body: () throws(FlashAttentionError) -> Void) throws(FlashAttentionError) -> Double {
    let stream = backend.stream
    for _ in 0..<warmup { try body() }
    try stream.synchronize()
    var samples: [Double] = []
    let start = try CUDAEvent(device: backend.device)
    let end = try CUDAEvent(device: backend.device)
    for _ in 0..<repetitions {
      try start.record(on: stream)
      try body()
      try end.record(on: stream)
      samples.append(Double(try end.elapsedMilliseconds(since: start)))
    }
    samples.sort()
    return samples[samples.count / 2]
  }
}
