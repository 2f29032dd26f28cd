import FlashAttentionCore
import _FlashAttentionKernelABI

/// Launches of the KV-cache kernels (`Kernels/decode/`): the append, the decode kernel and the
/// merge of its splits, all on one stream so each sees the previous one's writes.
enum DecodeLaunch {
  /// The device index data of a call as the kernels read it.
  static func cacheIndex(_ arguments: KVCacheForwardArguments) -> FACacheIndex {
    let cache = arguments.cache
    func address(_ view: IndexTensorView?) -> UnsafePointer<Int32>? {
      view.map { UnsafePointer($0.baseAddress.assumingMemoryBound(to: Int32.self)) }
    }
    return FACacheIndex(
      seqlens: address(cache.seqlens), batch_idx: address(cache.batchIndex), page_table: address(cache.pageTable),
      seqlens_stride: Int64(cache.seqlens.strides[0]), batch_idx_stride: Int64(cache.batchIndex?.strides[0] ?? 0),
      page_table_batch_stride: Int64(cache.pageTable?.strides[0] ?? 0),
      page_table_page_stride: Int64(cache.pageTable?.strides[1] ?? 0), page_size: Int32(cache.k.shape[1]),
      seqlen_new: Int32(arguments.seqlenNew))
  }

  /// The new keys and values written into the cache at each sequence's length: one thread per
  /// 16-byte chunk of a (token, head) row.
  static func append(
    _ arguments: KVCacheForwardArguments, device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) {
    guard let kNew = arguments.kNew, let vNew = arguments.vNew, arguments.seqlenNew > 0 else { return }
    let shape = arguments.shape
    let parameters = FAKVAppendParams(
      k_new: devicePointer(kNew.deviceAddress), v_new: devicePointer(vNew.deviceAddress),
      k_cache: deviceMutablePointer(arguments.cache.k.deviceAddress),
      v_cache: deviceMutablePointer(arguments.cache.v.deviceAddress), k_new_strides: FAStrides(kNew),
      v_new_strides: FAStrides(vNew), k_cache_strides: FAStrides(arguments.cache.k),
      v_cache_strides: FAStrides(arguments.cache.v), index: cacheIndex(arguments), heads_kv: Int32(shape.headsKV),
      head_dim: Int32(shape.headDim), head_dim_v: Int32(shape.headDimV), padding: 0)
    let chunks = arguments.seqlenNew * shape.headsKV * (shape.headDim + shape.headDimV) / 8
    let key = KVAppendKey()
    try device.loadedKernel(key).launch(
      grid: ((chunks + KVAppendKey.blockThreads - 1) / KVAppendKey.blockThreads, shape.batch, 1),
      block: (KVAppendKey.blockThreads, 1, 1), parameters: parameters, stream: stream)
  }

  /// Attention of the queries against the cache (after `append`): one CTA per (row block ×
  /// split, kv head, sequence); with several splits, their partial O and LSE go to `scratch`
  /// and the merge writes O and the LSE: the last split CTA of each row block inside the decode
  /// kernel when `splitCounters` (the address of `DecodeSplitCounters`, at least
  /// `plan.mergeGroups(shape)` of them, all 0) is given, else a second launch.
  static func decode(
    _ arguments: KVCacheForwardArguments, plan: DecodePlan, scratch: DecodeScratch?, splitCounters: UInt64? = nil,
    device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let mask = AttentionMask(options: arguments.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK)
    let (left, right) = kernelWindow(mask)
    let parameters = FADecodeParams(
      q: devicePointer(arguments.q.deviceAddress), k_cache: devicePointer(arguments.cache.k.deviceAddress),
      v_cache: devicePointer(arguments.cache.v.deviceAddress), o: deviceMutablePointer(arguments.out.deviceAddress),
      lse: deviceMutablePointer(arguments.lse.deviceAddress), o_partial: scratch.flatMap { deviceMutablePointer($0.out) },
      lse_partial: scratch.flatMap { deviceMutablePointer($0.lse) }, q_strides: FAStrides(arguments.q),
      k_strides: FAStrides(arguments.cache.k), v_strides: FAStrides(arguments.cache.v),
      o_strides: FAStrides(arguments.out), lse_strides: FAStatsStrides(arguments.lse), index: cacheIndex(arguments),
      batch: Int32(shape.batch), seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ),
      group: Int32(shape.groupSize), num_splits: Int32(plan.splits), scale: arguments.scale,
      softcap: arguments.options.softcap, window_left: left, window_right: right, padding: 0,
      split_counters: scratch == nil ? nil : splitCounters.flatMap { UnsafeMutablePointer<Int32>(bitPattern: UInt($0)) })
    try device.loadedKernel(plan.key).launch(
      grid: (plan.rowBlocks * plan.splits, shape.headsKV, shape.batch), block: (plan.key.threads, 1, 1),
      sharedMemory: plan.key.sharedMemoryBytes, parameters: parameters, stream: stream)
    guard let combine = plan.combine, let scratch, parameters.split_counters == nil else { return }
    let combineParameters = FADecodeCombineParams(
      o_partial: devicePointer(scratch.out), lse_partial: devicePointer(scratch.lse),
      o: deviceMutablePointer(arguments.out.deviceAddress), lse: deviceMutablePointer(arguments.lse.deviceAddress),
      o_strides: FAStrides(arguments.out), lse_strides: FAStatsStrides(arguments.lse), batch: Int32(shape.batch),
      seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ), num_splits: Int32(plan.splits))
    let rows = shape.batch * shape.headsQ * shape.seqlenQ
    try device.loadedKernel(combine).launch(
      grid: ((rows + DecodeCombineKey.rowsPerBlock - 1) / DecodeCombineKey.rowsPerBlock, 1, 1),
      block: (combine.threads, 1, 1), parameters: combineParameters, stream: stream)
  }
}

/// The split-KV partials of one decode call in device scratch: fp32 O `[splits, batch, heads_q,
/// seqlen_q, head_dim_v]`, then fp32 LSE `[splits, batch, heads_q, seqlen_q]`.
struct DecodeScratch {
  let out: UInt64
  let lse: UInt64

  /// Bytes for `splits` splits of `shape` (nil on overflow).
  static func bytes(shape: AttentionShape, splits: Int) -> Int? {
    var rows: Int? = splits
    for factor in [shape.batch, shape.headsQ, shape.seqlenQ] { rows = rows.flatMap { CheckedSize.product($0, factor) } }
    guard let rows, let outBytes = CheckedSize.product(rows, (shape.headDimV + 1) * 4) else { return nil }
    return outBytes
  }

  init(base: UInt64, shape: AttentionShape, splits: Int) {
    out = base
    lse = base + UInt64(splits * shape.batch * shape.headsQ * shape.seqlenQ * shape.headDimV * 4)
  }
}
