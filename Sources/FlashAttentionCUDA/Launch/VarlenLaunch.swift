import FlashAttentionCore
import _FlashAttentionKernelABI

/// The device addresses of a packed batch's index data (int32, contiguous): the prefix sums and
/// the optional used counts (0: none).
struct VarlenIndexAddresses {
  var cuSeqlensQ: UInt64
  var cuSeqlensK: UInt64
  var seqUsedQ: UInt64
  var seqUsedK: UInt64
}

/// Launches of the FlashAttention-2 kernels compiled with `FA_VARLEN` on a packed batch: the
/// grids cover the longest sequence (`shape.seqlenQ/K` are the maxima) and each block takes its
/// sequence from `cu_seqlens` by its batch index. The packed `(total, heads, dim)` tensors are
/// passed with batch stride 0, the LSE `(heads, total)` with batch stride 0 and column stride 1.
enum VarlenLaunch {
  static func forward(
    _ arguments: VarlenForwardArguments, index: VarlenIndexAddresses, key: FlashAttention2Key, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    if shape.batch == 0 || shape.seqlenQ == 0 { return }
    let (left, right) = kernelWindow(AttentionMask(options: arguments.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
    let parameters = FAForwardParams(
      q: devicePointer(arguments.q.deviceAddress), k: devicePointer(arguments.k.deviceAddress),
      v: devicePointer(arguments.v.deviceAddress), o: deviceMutablePointer(arguments.out.deviceAddress),
      lse: deviceMutablePointer(arguments.lse.deviceAddress),
      q_strides: FAStrides(packed: arguments.q), k_strides: FAStrides(packed: arguments.k),
      v_strides: FAStrides(packed: arguments.v), o_strides: FAStrides(packed: arguments.out),
      lse_strides: FAStatsStrides(batch: 0, head: Int64(arguments.lse.strides[0])),
      seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize),
      scale: arguments.scale, softcap: arguments.options.softcap, window_left: left, window_right: right,
      alibi_slopes: nil, alibi_batch_stride: 0, cu_seqlens_q: devicePointer(index.cuSeqlensQ), cu_seqlens_k: devicePointer(index.cuSeqlensK),
      seqused_q: devicePointer(index.seqUsedQ), seqused_k: devicePointer(index.seqUsedK), dropout: FADropoutParams())
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenQ + key.tile.blockM - 1) / key.tile.blockM, shape.headsQ, shape.batch),
      block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// The Hopper forward on a packed batch: the maps describe each packed tensor as one batch
  /// entry of `total` rows; the work items cover the longest sequence's query blocks for every
  /// (sequence, head), and a tile past its sequence's queries does nothing.
  /// `schedule` packed: the work items are the entries of a list written just before
  /// (`VarlenLaunch+Schedule.swift`), pairs of each sequence's own query blocks, longest first.
  static func hopperForward(
    _ arguments: VarlenForwardArguments, index: VarlenIndexAddresses, key: HopperForwardKey, persistent: Bool,
    schedule: CUDAKernelTuning.VarlenSchedule = .padded, device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    if shape.batch == 0 || shape.seqlenQ == 0 { return }
    let log2e: Float = 1.442_695_04
    let softcap = arguments.options.softcap
    let mBlocks = (shape.seqlenQ + key.blockM - 1) / key.blockM
    let items = (mBlocks + 1) / 2 * shape.headsQ * shape.batch
    var parameters = FAHopperForwardParams()
    try HopperTensorMaps.encode(
      [
        (whole(arguments.q), key.blockM, \.tm_q), (whole(arguments.k), key.blockN, \.tm_k),
        (whole(arguments.v), key.blockN, \.tm_v),
      ], into: &parameters, device: device)
    parameters.o = deviceMutablePointer(arguments.out.deviceAddress)
    parameters.lse = deviceMutablePointer(arguments.lse.deviceAddress)
    parameters.seqlen_q = Int32(shape.seqlenQ)
    parameters.seqlen_k = Int32(shape.seqlenK)
    parameters.heads_q = Int32(shape.headsQ)
    parameters.group = Int32(shape.groupSize)
    parameters.m_blocks = Int32(mBlocks)
    parameters.num_items = Int32(items)
    parameters.o_strides = FAStrides(packed: arguments.out)
    parameters.lse_strides = FAStatsStrides(batch: 0, head: Int64(arguments.lse.strides[0]))
    parameters.scale_log2 = arguments.scale * log2e
    parameters.softcap_over = softcap > 0 ? arguments.scale / softcap : 0
    parameters.softcap_log2 = softcap * log2e
    (parameters.window_left, parameters.window_right) = kernelWindow(
      AttentionMask(options: arguments.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
    parameters.cu_seqlens_q = devicePointer(index.cuSeqlensQ)
    parameters.cu_seqlens_k = devicePointer(index.cuSeqlensK)
    parameters.seqused_q = devicePointer(index.seqUsedQ)
    parameters.seqused_k = devicePointer(index.seqUsedK)
    // Not for e4m3 inputs: the fp8 kernel's V-transposing warps walk the padded schedule.
    if schedule == .packed, !arguments.q.dtype.isFloat8,
      let capacity = scheduleCapacity(
        totalRows: arguments.q.shape[0], batch: shape.batch, blockRows: key.blockM, paired: true, heads: shape.headsQ)
    {
      let packed = parameters
      try DeviceScratchPool.shared(for: device).withScratch(capacity * scheduleEntryBytes, on: stream) {
        (address) throws(FlashAttentionError) in
        try writeSchedule(
          at: address, capacity: capacity, sides: querySides(index, shape: shape), batch: shape.batch,
          heads: shape.headsQ, blockRows: key.blockM, paired: true, device: device, stream: stream)
        var listed = packed
        listed.schedule = devicePointer(address)
        listed.num_items = Int32(capacity)
        try device.loadedKernel(key).launch(
          grid: (persistent ? min(capacity, device.multiprocessors) : capacity, 1, 1), block: (key.threads, 1, 1),
          sharedMemory: key.sharedMemoryBytes, parameters: listed, stream: stream)
      }
      return
    }
    let blocks = persistent ? min(items, device.multiprocessors) : items
    try device.loadedKernel(key).launch(
      grid: (blocks, 1, 1), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: parameters,
      stream: stream)
  }

  /// The backward's kernels in order (the zeroed dQ accumulator, D and LSE2, dK/dV with dQ
  /// additions, dQ's conversion) on `scratch`, laid out as for a padded batch of the maxima.
  /// `schedule` packed: the Hopper kernels' grids are lists of real key (query) blocks, longest
  /// sequence first (`VarlenLaunch+Schedule.swift`).
  static func backward(
    _ arguments: VarlenBackwardArguments, index: VarlenIndexAddresses, plan: BackwardKernelPlan,
    scratch: BackwardScratch, schedule: CUDAKernelTuning.VarlenSchedule = .padded, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let f = arguments.forward
    let shape = f.shape
    if scratch.accumulatorFloats > 0 {
      try device.makeCurrent()
      try device.api.check(
        device.api.cuMemsetD32Async(scratch.accumulator, 0, scratch.accumulatorFloats, stream.handle),
        "cuMemsetD32Async(dQ accumulator)")
    }
    if shape.batch == 0 { return }
    let cuQ: UnsafePointer<Int32>? = devicePointer(index.cuSeqlensQ)
    let usedQ: UnsafePointer<Int32>? = devicePointer(index.seqUsedQ)
    // Packed scratch: the preprocess covers the packed rows directly (one block row per 4 rows,
    // no blocks past a short sequence's end).
    let packedRows = packsScratch(plan: plan, schedule: schedule) ? f.q.shape[0] : 0
    if shape.seqlenQ > 0 {
      // (CUDA varlen refuses ALiBi, so the preprocess sees no slopes.)
      let (left, right) = kernelWindow(AttentionMask(options: f.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
      let parameters = FABackwardPreprocessParams(
        o: devicePointer(f.out.deviceAddress), dout: devicePointer(arguments.dOut.deviceAddress),
        lse: devicePointer(f.lse.deviceAddress), lse2: deviceMutablePointer(scratch.lse2),
        delta: deviceMutablePointer(scratch.delta), o_strides: FAStrides(packed: f.out),
        dout_strides: FAStrides(packed: arguments.dOut), lse_strides: FAStatsStrides(batch: 0, head: Int64(f.lse.strides[0])),
        seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ), cu_seqlens_q: cuQ, seqused_q: usedQ,
        q: devicePointer(f.q.deviceAddress), k: devicePointer(f.k.deviceAddress), v: devicePointer(f.v.deviceAddress),
        q_strides: FAStrides(packed: f.q), k_strides: FAStrides(packed: f.k), v_strides: FAStrides(packed: f.v),
        seqlen_k: Int32(shape.seqlenK), group: Int32(shape.groupSize), scale: f.scale, softcap: f.options.softcap,
        window_left: left, window_right: right, alibi_slopes: nil, alibi_batch_stride: 0,
        cu_seqlens_k: devicePointer(index.cuSeqlensK), seqused_k: devicePointer(index.seqUsedK), dropout: FADropoutParams(),
        packed_rows: Int32(packedRows), sequences: Int32(shape.batch))
      let (rows, batch) = packedRows > 0 ? (packedRows, 1) : (shape.seqlenQ, shape.batch)
      let grid = FlashAttention2Key.preprocessGrid(
        rows: rows, heads: shape.headsQ, batch: batch, headDimV: plan.preprocess.headDimV)
      try device.loadedKernel(plan.preprocess).launch(
        grid: grid, block: (FlashAttention2Key.preprocessThreads, 1, 1), parameters: parameters, stream: stream)
    }
    let keyValue: FlashAttention2Key
    let convert: FlashAttention2Key
    switch plan.form {
    case let .flashAttention2(kv, dqConvert):
      keyValue = kv
      convert = dqConvert
    case let .hopperFused(kv, dqConvert):
      try hopperKeyValue(
        arguments, index: index, key: kv, scratch: scratch, schedule: schedule, device: device, stream: stream)
      try self.convert(
        arguments, index: index, key: dqConvert, scratch: scratch, packedRows: packedRows, device: device, stream: stream)
      return
    case let .hopperSplit(kv, dq):
      try hopperKeyValue(
        arguments, index: index, key: kv, scratch: scratch, schedule: schedule, device: device, stream: stream)
      try hopperDQ(arguments, index: index, key: dq, scratch: scratch, schedule: schedule, device: device, stream: stream)
      return
    }
    if shape.seqlenK > 0 {
      let key = keyValue
      let (left, right) = kernelWindow(AttentionMask(options: f.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
      var parameters = FABackwardKeyValueParams(
        q: devicePointer(f.q.deviceAddress), k: devicePointer(f.k.deviceAddress), v: devicePointer(f.v.deviceAddress),
        dout: devicePointer(arguments.dOut.deviceAddress), lse2: devicePointer(scratch.lse2),
        delta: devicePointer(scratch.delta), dq_accum: deviceMutablePointer(scratch.accumulator),
        dk: deviceMutablePointer(arguments.dK.deviceAddress), dv: deviceMutablePointer(arguments.dV.deviceAddress),
        q_strides: FAStrides(packed: f.q), k_strides: FAStrides(packed: f.k), v_strides: FAStrides(packed: f.v),
        dout_strides: FAStrides(packed: arguments.dOut), dk_strides: FAStrides(packed: arguments.dK),
        dv_strides: FAStrides(packed: arguments.dV), seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK),
        group: Int32(shape.groupSize), scale: f.scale, softcap: f.options.softcap, window_left: left,
        window_right: right, key_block_base: 0, alibi_slopes: nil, alibi_batch_stride: 0, cu_seqlens_q: cuQ, cu_seqlens_k: devicePointer(index.cuSeqlensK),
        seqused_q: usedQ, seqused_k: devicePointer(index.seqUsedK), dropout: FADropoutParams())
      let blocks = (shape.seqlenK + key.tile.blockN - 1) / key.tile.blockN
      let function = try device.loadedKernel(key)
      if f.options.deterministic {
        // One key block per launch: each dQ element gets at most one addition per launch, in a
        // fixed order (sequences never share dQ rows).
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
    try self.convert(arguments, index: index, key: convert, scratch: scratch, device: device, stream: stream)
  }

  /// dQ = scale · accumulator in the storage dtype, per sequence (`key`'s tile says the layout).
  /// `packedRows` > 0: the accumulator is packed (`packsScratch`) and every packed row is
  /// converted in one batch entry (rows of no sequence get 0, as the clear kernel gives them).
  static func convert(
    _ arguments: VarlenBackwardArguments, index: VarlenIndexAddresses, key: FlashAttention2Key,
    scratch: BackwardScratch, packedRows: Int = 0, device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.forward.shape
    if shape.seqlenQ == 0 { return }
    let parameters = FABackwardConvertParams(
      dq_accum: devicePointer(scratch.accumulator), dq: deviceMutablePointer(arguments.dQ.deviceAddress),
      dq_strides: FAStrides(packed: arguments.dQ), seqlen_q: Int32(shape.seqlenQ), heads_q: Int32(shape.headsQ),
      scale: arguments.forward.scale, cu_seqlens_q: devicePointer(index.cuSeqlensQ),
      seqused_q: devicePointer(index.seqUsedQ), packed_rows: Int32(packedRows), packed_padding: 0)
    let rows = packedRows > 0 ? packedRows : shape.seqlenQ
    try device.loadedKernel(key).launch(
      grid: (key.convertBlocks(rows: rows, heads: shape.headsQ), packedRows > 0 ? 1 : shape.batch, 1), block: (256, 1, 1),
      parameters: parameters, stream: stream)
  }

  /// Whether the backward's scratch is packed (each sequence at its own rows, total_q rows in
  /// all): with the packed schedule on the Hopper kernels, whose dQ accumulator is row-major
  /// (the FlashAttention-2 kernels' bulk layout keeps the padded one).
  static func packsScratch(plan: BackwardKernelPlan, schedule: CUDAKernelTuning.VarlenSchedule) -> Bool {
    guard schedule == .packed else { return false }
    switch plan.form {
    case .hopperFused, .hopperSplit: return true
    case .flashAttention2: return false
    }
  }

  /// The Hopper key/value kernel on a packed batch (maps of one batch entry of `total` rows).
  static func hopperKeyValue(
    _ arguments: VarlenBackwardArguments, index: VarlenIndexAddresses, key: HopperBackwardKey,
    scratch: BackwardScratch, schedule: CUDAKernelTuning.VarlenSchedule = .padded, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let f = arguments.forward
    let shape = f.shape
    var parameters = FAHopperBackwardParams()
    try HopperTensorMaps.encode(
      [
        (whole(f.q), HopperBackwardKey.blockM, \.tm_q), (whole(f.k), key.blockN, \.tm_k),
        (whole(f.v), key.blockN, \.tm_v), (whole(arguments.dOut), HopperBackwardKey.blockM, \.tm_dout),
      ], into: &parameters, device: device)
    parameters.lse2 = devicePointer(scratch.lse2)
    parameters.delta = devicePointer(scratch.delta)
    parameters.dq_accum = deviceMutablePointer(key.skipDQ ? 0 : scratch.accumulator)
    parameters.dk = deviceMutablePointer(arguments.dK.deviceAddress)
    parameters.dv = deviceMutablePointer(arguments.dV.deviceAddress)
    parameters.dk_strides = FAStrides(packed: arguments.dK)
    parameters.dv_strides = FAStrides(packed: arguments.dV)
    parameters.seqlen_q = Int32(shape.seqlenQ)
    parameters.seqlen_k = Int32(shape.seqlenK)
    parameters.heads_q = Int32(shape.headsQ)
    parameters.group = Int32(shape.groupSize)
    parameters.scale = f.scale
    parameters.scale_log2 = f.scale * 1.442_695_04
    (parameters.window_left, parameters.window_right) = kernelWindow(
      AttentionMask(options: f.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
    parameters.cu_seqlens_q = devicePointer(index.cuSeqlensQ)
    parameters.cu_seqlens_k = devicePointer(index.cuSeqlensK)
    parameters.seqused_q = devicePointer(index.seqUsedQ)
    parameters.seqused_k = devicePointer(index.seqUsedK)
    parameters.packed_rows = schedule == .packed ? Int32(f.q.shape[0]) : 0
    if schedule == .packed,
      let capacity = scheduleCapacity(
        totalRows: f.k.shape[0], batch: shape.batch, blockRows: key.blockN, paired: false, heads: shape.headsKV)
    {
      try withList(
        capacity: capacity, sides: keySides(index, shape: shape), batch: shape.batch, heads: shape.headsKV,
        blockRows: key.blockN, device: device, stream: stream
      ) { (address) throws(FlashAttentionError) in
        var listed = parameters
        listed.schedule = devicePointer(address)
        try device.loadedKernel(key).launch(
          grid: (capacity, 1, 1), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: listed,
          stream: stream)
      }
      return
    }
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenK + key.blockN - 1) / key.blockN, shape.headsKV, shape.batch), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// The Hopper split form's dQ kernel on a packed batch: writes dQ of each sequence directly.
  static func hopperDQ(
    _ arguments: VarlenBackwardArguments, index: VarlenIndexAddresses, key: HopperBackwardDQKey,
    scratch: BackwardScratch, schedule: CUDAKernelTuning.VarlenSchedule = .padded, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let f = arguments.forward
    let shape = f.shape
    let rows = HopperBackwardDQKey.blockM
    var parameters = FAHopperBackwardDQParams()
    try HopperTensorMaps.encode(
      [
        (whole(f.q), rows, \.tm_q), (whole(f.k), key.blockN, \.tm_k), (whole(f.v), key.blockN, \.tm_v),
        (whole(arguments.dOut), rows, \.tm_dout),
      ], into: &parameters, device: device)
    parameters.lse2 = devicePointer(scratch.lse2)
    parameters.delta = devicePointer(scratch.delta)
    parameters.dq = deviceMutablePointer(arguments.dQ.deviceAddress)
    parameters.dq_strides = FAStrides(packed: arguments.dQ)
    parameters.seqlen_q = Int32(shape.seqlenQ)
    parameters.seqlen_k = Int32(shape.seqlenK)
    parameters.heads_q = Int32(shape.headsQ)
    parameters.group = Int32(shape.groupSize)
    parameters.scale = f.scale
    parameters.scale_log2 = f.scale * 1.442_695_04
    (parameters.window_left, parameters.window_right) = kernelWindow(
      AttentionMask(options: f.options, seqlenQ: shape.seqlenQ, seqlenK: shape.seqlenK))
    parameters.cu_seqlens_q = devicePointer(index.cuSeqlensQ)
    parameters.cu_seqlens_k = devicePointer(index.cuSeqlensK)
    parameters.seqused_q = devicePointer(index.seqUsedQ)
    parameters.seqused_k = devicePointer(index.seqUsedK)
    parameters.packed_rows = schedule == .packed ? Int32(f.q.shape[0]) : 0
    if schedule == .packed,
      let capacity = scheduleCapacity(
        totalRows: f.q.shape[0], batch: shape.batch, blockRows: rows, paired: false, heads: shape.headsQ)
    {
      try withList(
        capacity: capacity, sides: querySides(index, shape: shape), batch: shape.batch, heads: shape.headsQ,
        blockRows: rows, device: device, stream: stream
      ) { (address) throws(FlashAttentionError) in
        var listed = parameters
        listed.schedule = devicePointer(address)
        try device.loadedKernel(key).launch(
          grid: (capacity, 1, 1), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: listed,
          stream: stream)
      }
      return
    }
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenQ + rows - 1) / rows, shape.headsQ, shape.batch), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// A backward kernel on the packed schedule: the list written into stream-ordered scratch, then
  /// `launch(address)` (one block per entry).
  private static func withList(
    capacity: Int, sides: ScheduleSides, batch: Int, heads: Int, blockRows: Int, device: CUDADevice,
    stream: CUDAStream, launch: (UInt64) throws(FlashAttentionError) -> Void
  ) throws(FlashAttentionError) {
    try DeviceScratchPool.shared(for: device).withScratch(capacity * scheduleEntryBytes, on: stream) {
      (address) throws(FlashAttentionError) in
      try writeSchedule(
        at: address, capacity: capacity, sides: sides, batch: batch, heads: heads, blockRows: blockRows, paired: false,
        device: device, stream: stream)
      try launch(address)
    }
  }

  /// A packed `(total, heads, dim)` view as the `[1, total, heads, dim]` tensor its TMA map describes.
  static func whole(_ tensor: TensorView) -> TensorView { tensor.sequenceRows(start: 0, count: tensor.shape[0]) }

  /// Clears the rows of a packed tensor (and the LSE columns) that no sequence computes: past
  /// `seqused` and after the last sequence (`flash_varlen_clear`).
  static func clear(
    _ tensor: TensorView, lse: TensorView?, cuSeqlens: UInt64, seqUsed: UInt64, batch: Int, device: CUDADevice,
    stream: CUDAStream
  ) throws(FlashAttentionError) {
    let total = tensor.shape[0], heads = tensor.shape[1], width = tensor.shape[2]
    if total == 0 || heads == 0 || width == 0 { return }
    let parameters = FAVarlenClearParams(
      tensor: deviceMutablePointer(tensor.deviceAddress), row_stride: Int64(tensor.strides[0]),
      head_stride: Int64(tensor.strides[1]), lse: lse.flatMap { deviceMutablePointer($0.deviceAddress) },
      lse_head_stride: Int64(lse?.strides[0] ?? 0), cu_seqlens: devicePointer(cuSeqlens),
      seqused: devicePointer(seqUsed), batch: Int32(batch), total: Int32(total), heads: Int32(heads),
      width: Int32(width))
    // The rows to clear are known only on the device: enough blocks per segment for a long tail.
    let elements = total * heads * width
    let blocks = max(1, min(64, (elements + 255) / 256))
    let key = VarlenClearKey(arch: device.arch)
    try device.loadedKernel(key).launch(
      grid: (blocks, batch + 1, 1), block: (key.threads, 1, 1), parameters: parameters, stream: stream)
  }
}

extension FAStrides {
  /// The row and head strides of a packed `(total, heads, dim)` view; batch stride 0 (the
  /// sequence's first row comes from `cu_seqlens`).
  init(packed view: TensorView) {
    self.init(batch: 0, row: Int64(view.strides[0]), head: Int64(view.strides[1]))
  }
}
