import CFlashAttention
import FlashAttention

// fa_varlen_forward, fa_varlen_backward and fa_kvcache_forward of flash_attention.h.

@_cdecl("fa_varlen_forward")
public func faVarlenForward(
  _ q: UnsafePointer<fa_tensor>?, _ k: UnsafePointer<fa_tensor>?, _ v: UnsafePointer<fa_tensor>?,
  _ out: UnsafePointer<fa_tensor>?, _ lse: UnsafePointer<fa_tensor>?, _ cuSeqlensQ: UnsafePointer<fa_tensor>?,
  _ cuSeqlensK: UnsafePointer<fa_tensor>?, _ seqUsedQ: UnsafePointer<fa_tensor>?, _ seqUsedK: UnsafePointer<fa_tensor>?,
  _ maxSeqlenQ: Int64, _ maxSeqlenK: Int64, _ options: UnsafePointer<fa_options>?, _ stream: UnsafeMutableRawPointer?
) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    let q = try TensorDescriptor.view(q, name: "q")
    let sequences = try VarlenDescriptor.sequences(
      cuSeqlensQ, cuSeqlensK, seqUsedQ, seqUsedK, maxSeqlenQ: maxSeqlenQ, maxSeqlenK: maxSeqlenK)
    try engine(for: q, stream: stream).varlenForward(
      q: q, k: TensorDescriptor.view(k, name: "k"), v: TensorDescriptor.view(v, name: "v"),
      out: TensorDescriptor.view(out, name: "out"), lse: TensorDescriptor.view(lse, name: "lse"),
      sequences: sequences, options: OptionsDescriptor.options(options), stream: stream.map(CallerStream.init))
  }
}

@_cdecl("fa_varlen_backward")
public func faVarlenBackward(
  _ q: UnsafePointer<fa_tensor>?, _ k: UnsafePointer<fa_tensor>?, _ v: UnsafePointer<fa_tensor>?,
  _ out: UnsafePointer<fa_tensor>?, _ lse: UnsafePointer<fa_tensor>?, _ dOut: UnsafePointer<fa_tensor>?,
  _ dQ: UnsafePointer<fa_tensor>?, _ dK: UnsafePointer<fa_tensor>?, _ dV: UnsafePointer<fa_tensor>?,
  _ cuSeqlensQ: UnsafePointer<fa_tensor>?, _ cuSeqlensK: UnsafePointer<fa_tensor>?,
  _ seqUsedQ: UnsafePointer<fa_tensor>?, _ seqUsedK: UnsafePointer<fa_tensor>?, _ maxSeqlenQ: Int64,
  _ maxSeqlenK: Int64, _ options: UnsafePointer<fa_options>?, _ stream: UnsafeMutableRawPointer?
) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    let q = try TensorDescriptor.view(q, name: "q")
    let sequences = try VarlenDescriptor.sequences(
      cuSeqlensQ, cuSeqlensK, seqUsedQ, seqUsedK, maxSeqlenQ: maxSeqlenQ, maxSeqlenK: maxSeqlenK)
    try engine(for: q, stream: stream).varlenBackward(
      q: q, k: TensorDescriptor.view(k, name: "k"), v: TensorDescriptor.view(v, name: "v"),
      out: TensorDescriptor.view(out, name: "out"), lse: TensorDescriptor.view(lse, name: "lse"),
      dOut: TensorDescriptor.view(dOut, name: "dout"), dQ: TensorDescriptor.view(dQ, name: "dq"),
      dK: TensorDescriptor.view(dK, name: "dk"), dV: TensorDescriptor.view(dV, name: "dv"), sequences: sequences,
      options: OptionsDescriptor.options(options), stream: stream.map(CallerStream.init))
  }
}

@_cdecl("fa_kvcache_forward")
public func faKVCacheForward(
  _ q: UnsafePointer<fa_tensor>?, _ kCache: UnsafePointer<fa_tensor>?, _ vCache: UnsafePointer<fa_tensor>?,
  _ kNew: UnsafePointer<fa_tensor>?, _ vNew: UnsafePointer<fa_tensor>?, _ cacheSeqlens: UnsafePointer<fa_tensor>?,
  _ cacheBatchIndex: UnsafePointer<fa_tensor>?, _ pageTable: UnsafePointer<fa_tensor>?,
  _ out: UnsafePointer<fa_tensor>?, _ lse: UnsafePointer<fa_tensor>?, _ numSplits: Int32,
  _ options: UnsafePointer<fa_options>?, _ stream: UnsafeMutableRawPointer?
) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    let q = try TensorDescriptor.view(q, name: "q")
    let cache = KVCache(
      k: try TensorDescriptor.view(kCache, name: "k_cache"), v: try TensorDescriptor.view(vCache, name: "v_cache"),
      seqlens: try TensorDescriptor.requiredIndexView(cacheSeqlens, name: "cache_seqlens"),
      batchIndex: try TensorDescriptor.indexView(cacheBatchIndex, name: "cache_batch_idx"),
      pageTable: try TensorDescriptor.indexView(pageTable, name: "page_table"))
    let kNew = try kNew.map { pointer throws(FlashAttentionError) in try TensorDescriptor.view(pointer, name: "k_new") }
    let vNew = try vNew.map { pointer throws(FlashAttentionError) in try TensorDescriptor.view(pointer, name: "v_new") }
    try engine(for: q, stream: stream).forward(
      q: q, cache: cache, kNew: kNew, vNew: vNew, out: TensorDescriptor.view(out, name: "out"),
      lse: TensorDescriptor.view(lse, name: "lse"), options: OptionsDescriptor.options(options),
      numSplits: Int(numSplits), stream: stream.map(CallerStream.init))
  }
}

/// The index tensors and bounds of a packed batch.
enum VarlenDescriptor {
  static func sequences(
    _ cuSeqlensQ: UnsafePointer<fa_tensor>?, _ cuSeqlensK: UnsafePointer<fa_tensor>?,
    _ seqUsedQ: UnsafePointer<fa_tensor>?, _ seqUsedK: UnsafePointer<fa_tensor>?, maxSeqlenQ: Int64, maxSeqlenK: Int64
  ) throws(FlashAttentionError) -> VarlenSequences {
    VarlenSequences(
      cuSeqlensQ: try TensorDescriptor.requiredIndexView(cuSeqlensQ, name: "cu_seqlens_q"),
      cuSeqlensK: try TensorDescriptor.requiredIndexView(cuSeqlensK, name: "cu_seqlens_k"),
      maxSeqlenQ: Int(maxSeqlenQ), maxSeqlenK: Int(maxSeqlenK),
      seqUsedQ: try TensorDescriptor.indexView(seqUsedQ, name: "seqused_q"),
      seqUsedK: try TensorDescriptor.indexView(seqUsedK, name: "seqused_k"))
  }
}
