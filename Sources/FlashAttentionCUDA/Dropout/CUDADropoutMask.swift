import FlashAttentionCore

/// Dropout's keep mask computed on the GPU from the header every backend compiles
/// (`fa_philox.h`), for the test that the GPU and the CPU drop the same entries.
package enum CUDADropoutMask {
  /// `DropoutKeepMaskParams` of `Kernels/dropout/keep_mask.cu`, field for field.
  struct Parameters: BitwiseCopyable {
    var mask: UInt64
    var seed: UInt64
    var offset: UInt64
    var threshold: UInt32
    var batchHeads: Int32
    var seqlenQ: Int32
    var seqlenK: Int32
    var firstBatchHead: UInt32
  }

  package static let program = CUDAProgram(
    entry: "dropout_keep_mask", source: KernelSources.text("dropout/keep_mask.cu"))

  /// The mask `[batch · heads_q, seqlen_q, seqlen_k]` (1 kept, 0 dropped) of `dropout` for
  /// batch entries `dropout.firstBatch ..< + batch`, computed on `device` and copied back.
  package static func mask(
    _ dropout: AttentionDropout, batch: Int, headsQ: Int, seqlenQ: Int, seqlenK: Int, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) -> [UInt8] {
    let count = batch * headsQ * seqlenQ * seqlenK
    guard count > 0 else { return [] }
    let buffer = try CUDABuffer(device: device, byteCount: count)
    let parameters = Parameters(
      mask: buffer.address, seed: dropout.seed, offset: dropout.offset, threshold: dropout.keepThreshold,
      batchHeads: Int32(clamping: batch * headsQ), seqlenQ: Int32(clamping: seqlenQ), seqlenK: Int32(clamping: seqlenK),
      firstBatchHead: UInt32(truncatingIfNeeded: dropout.firstBatch * headsQ))
    let threads = batch * headsQ * seqlenQ * ((seqlenK + 15) / 16)
    try KernelCache.shared.function(for: program, device: device).launch(
      grid: ((threads + 255) / 256, 1, 1), block: (256, 1, 1), parameters: parameters, stream: stream)
    let host = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
    defer { host.deallocate() }
    try buffer.download(to: host, byteCount: count, stream: stream)
    try stream.synchronize()
    return Array(UnsafeBufferPointer(start: host.assumingMemoryBound(to: UInt8.self), count: count))
  }
}
