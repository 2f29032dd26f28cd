import FlashAttentionCore
import _FlashAttentionKernelABI

/// Launches of the FlashAttention-2 kernels (`Kernels/sm80/`): each fills its kernel's
/// parameter struct and grid.
enum FlashAttention2Launch {
  /// O and LSE: one CTA per (query block, head, batch). A key with value groups covers every
  /// column of V in one launch; otherwise one launch per value chunk
  /// (`FlashAttention2Key.forwardValueChunks`: one up to d_v = 256), `key` being the first
  /// chunk's: each launch reads its columns of V and writes its columns of O, and every launch
  /// writes the same LSE (the same S, computed the same way). `alibiSlopes`: the device copy of
  /// the call's slopes (0 without ALiBi).
  static func forward(
    _ arguments: ForwardArguments, key: FlashAttention2Key, device: CUDADevice, stream: CUDAStream,
    alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    for (launchKey, offset) in key.forwardLaunches(headDimV: arguments.shape.headDimV) {
      // Columns are the innermost dimension (stride 1), so a chunk is a byte offset.
      let vBytes = UInt64(offset * arguments.v.dtype.byteSize)
      let outBytes = UInt64(offset * arguments.out.dtype.byteSize)
      try forward(
        arguments, key: launchKey, device: device, stream: stream, alibiSlopes: alibiSlopes,
        v: arguments.v.deviceAddress + vBytes, out: arguments.out.deviceAddress + outBytes)
    }
  }

  private static func forward(
    _ arguments: ForwardArguments, key: FlashAttention2Key, device: CUDADevice, stream: CUDAStream,
    alibiSlopes: UInt64, v: UInt64, out: UInt64
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let (left, right) = kernelWindow(arguments.mask)
    let parameters = FAForwardParams(
      q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
      v: devicePointer(v), o: deviceMutablePointer(out),
      lse: deviceMutablePointer(arguments.lse.deviceAddress),
      q_strides: FAStrides(arguments.q), k_strides: FAStrides(arguments.k), v_strides: FAStrides(arguments.v),
      o_strides: FAStrides(arguments.out), lse_strides: FAStatsStrides(arguments.lse),
      seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize),
      scale: arguments.scale, softcap: arguments.options.softcap, window_left: left, window_right: right,
      alibi_slopes: devicePointer(alibiSlopes), alibi_batch_stride: alibiBatchStride(arguments.options, shape),
      cu_seqlens_q: nil, cu_seqlens_k: nil, seqused_q: nil, seqused_k: nil,
      dropout: FADropoutParams(arguments.options, headsQ: shape.headsQ))
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenQ + key.tile.blockM - 1) / key.tile.blockM, shape.headsQ, shape.batch),
      block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// D = rowsum(dO ∘ O) and the LSE in log2 units into the scratch, a few query rows per warp
  /// (`FlashAttention2Key.preprocessRowsPerWarp`, 8-column chunks a lane); D
  /// from the scores for rows with scores far beyond ordinary attention's (the kernel's
  /// `exact_row_delta`, which reads Q, K, V, the mask, softcap and `alibiSlopes`).
  static func preprocess(
    _ arguments: BackwardArguments, key: FlashAttention2Key, scratch: BackwardScratch, device: CUDADevice,
    stream: CUDAStream, alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let (left, right) = kernelWindow(arguments.mask)
    let parameters = FABackwardPreprocessParams(
      o: devicePointer(arguments.out.deviceAddress), dout: devicePointer(arguments.dOut.deviceAddress),
      lse: devicePointer(arguments.lse.deviceAddress), lse2: deviceMutablePointer(scratch.lse2),
      delta: deviceMutablePointer(scratch.delta), o_strides: FAStrides(arguments.out),
      dout_strides: FAStrides(arguments.dOut), lse_strides: FAStatsStrides(arguments.lse),
      seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ), cu_seqlens_q: nil, seqused_q: nil,
      q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
      v: devicePointer(arguments.v.deviceAddress), q_strides: FAStrides(arguments.q), k_strides: FAStrides(arguments.k),
      v_strides: FAStrides(arguments.v), seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize),
      scale: arguments.scale, softcap: arguments.options.softcap, window_left: left, window_right: right,
      alibi_slopes: devicePointer(alibiSlopes), alibi_batch_stride: alibiBatchStride(arguments.options, shape),
      cu_seqlens_k: nil, seqused_k: nil, dropout: FADropoutParams(arguments.options, headsQ: shape.headsQ),
      packed_rows: 0, sequences: Int32(shape.batch))
    try device.loadedKernel(key).launch(
      grid: FlashAttention2Key.preprocessGrid(
        rows: shape.seqlenQ, heads: shape.headsQ, batch: shape.batch, headDimV: key.headDimV),
      block: (FlashAttention2Key.preprocessThreads, 1, 1), parameters: parameters, stream: stream)
  }

  /// dK and dV per key block, dQ added into the scratch's accumulator. In the deterministic mode
  /// the key blocks run one launch after another, so each dQ element gets at most one addition
  /// per launch, in a fixed order.
  static func keyValue(
    _ arguments: BackwardArguments, key: FlashAttention2Key, scratch: BackwardScratch, device: CUDADevice,
    stream: CUDAStream, alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let (left, right) = kernelWindow(arguments.mask)
    var parameters = FABackwardKeyValueParams(
      q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
      v: devicePointer(arguments.v.deviceAddress), dout: devicePointer(arguments.dOut.deviceAddress),
      lse2: devicePointer(scratch.lse2), delta: devicePointer(scratch.delta),
      dq_accum: deviceMutablePointer(scratch.accumulator), dk: deviceMutablePointer(arguments.dK.deviceAddress),
      dv: deviceMutablePointer(arguments.dV.deviceAddress), q_strides: FAStrides(arguments.q),
      k_strides: FAStrides(arguments.k), v_strides: FAStrides(arguments.v), dout_strides: FAStrides(arguments.dOut),
      dk_strides: FAStrides(arguments.dK), dv_strides: FAStrides(arguments.dV), seqlen_q: Int32(shape.seqlenQ),
      seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize), scale: arguments.scale,
      softcap: arguments.options.softcap, window_left: left, window_right: right, key_block_base: 0,
      alibi_slopes: devicePointer(alibiSlopes), alibi_batch_stride: alibiBatchStride(arguments.options, shape),
      cu_seqlens_q: nil, cu_seqlens_k: nil, seqused_q: nil, seqused_k: nil,
      dropout: FADropoutParams(arguments.options, headsQ: shape.headsQ))
    let blocks = (shape.seqlenK + key.tile.blockN - 1) / key.tile.blockN
    let function = try device.loadedKernel(key)
    if arguments.options.deterministic {
      for base in 0..<blocks {
        parameters.key_block_base = Int32(base)
        try function.launch(
          grid: (1, shape.headsKV, shape.batch), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes,
          parameters: parameters, stream: stream)
      }
    } else {
      try function.launch(
        grid: (blocks, shape.headsKV, shape.batch), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes,
        parameters: parameters, stream: stream)
    }
  }

  /// dQ = scale · accumulator in the storage dtype; `key`'s tile says the accumulator's layout.
  static func convert(
    _ arguments: BackwardArguments, key: FlashAttention2Key, scratch: BackwardScratch, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let parameters = FABackwardConvertParams(
      dq_accum: devicePointer(scratch.accumulator), dq: deviceMutablePointer(arguments.dQ.deviceAddress),
      dq_strides: FAStrides(arguments.dQ), seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ),
      scale: arguments.scale, cu_seqlens_q: nil, seqused_q: nil, packed_rows: 0, packed_padding: 0)
    try device.loadedKernel(key).launch(
      grid: (key.convertBlocks(rows: shape.seqlenQ, heads: shape.headsQ), shape.batch, 1), block: (256, 1, 1),
      parameters: parameters, stream: stream)
  }

  /// Elements between two batch entries' slopes: heads_q for a `(batch, heads_q)` table, else 0.
  private static func alibiBatchStride(_ options: AttentionOptions, _ shape: AttentionShape) -> Int64 {
    options.alibiSlopes?.batch == nil ? 0 : Int64(shape.headsQ)
  }
}
