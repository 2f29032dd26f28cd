import FlashAttentionCore

// Stand-in so that the cuda-decode branch builds and tests alone: the varlen kernels live on
// the cuda-varlen branch (`CUDABackend+Varlen.swift` declares this conformance there). The lead
// deletes this file when merging the two.
extension CUDABackend: VariableLengthBackend {
  public func varlenForward(_ arguments: VarlenForwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "variable-length batches (the cuda-varlen branch)")
  }

  public func varlenBackward(_ arguments: VarlenBackwardArguments, stream: CallerStream?) throws(FlashAttentionError) {
    throw .unsupported(backend: name, feature: "variable-length batches (the cuda-varlen branch)")
  }
}
