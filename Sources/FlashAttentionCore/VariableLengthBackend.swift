/// A backend that also runs packed variable-length batches and KV-cache inference.
public protocol VariableLengthBackend: AttentionBackend {
  /// `stream`, for CUDA memory, is the caller's stream (the call then returns without waiting).
  func varlenForward(_ arguments: VarlenForwardArguments, stream: CallerStream?) throws(FlashAttentionError)
  func varlenBackward(_ arguments: VarlenBackwardArguments, stream: CallerStream?) throws(FlashAttentionError)
  func kvCacheForward(_ arguments: KVCacheForwardArguments, stream: CallerStream?) throws(FlashAttentionError)
}

extension TensorView {
  /// Zeroes rows `rows` of a host tensor whose first dimension is tokens (`(total, heads, dim)`):
  /// the rows a varlen call leaves out (past `seqused`, past the last sequence).
  public func zeroTokenRows(_ rows: Range<Int>) {
    let rowBytes = shape[shape.count - 1] * dtype.byteSize
    for row in rows {
      for head in 0..<shape[1] {
        (baseAddress + (row * strides[0] + head * strides[1]) * dtype.byteSize)
          .initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
      }
    }
  }

  /// Sets columns `columns` of a host `(heads, total)` float32 LSE to -inf.
  public func fillLSEColumns(_ columns: Range<Int>, with value: Float = -.infinity) {
    let floats = baseAddress.assumingMemoryBound(to: Float.self)
    for head in 0..<shape[0] {
      for column in columns { floats[head * strides[0] + column * strides[1]] = value }
    }
  }
}
