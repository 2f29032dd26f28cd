import FlashAttentionCore
import _FlashAttentionKernelABI

/// Launches of the Hopper kernels (`Kernels/hopper/`): TMA maps, parameter structs, grids.
/// `KernelSelection` has already checked that the kernels apply.
enum HopperLaunch {
  /// The forward: work items (pairs of query blocks m and M-1-m of one (batch, head), see the
  /// scheduler in the kernel) taken round-robin by one block per item, or per SM on the
  /// persistent grid.
  /// `alibiSlopes`: the device copy of the call's slopes (0 without ALiBi).
  static func forward(
    _ arguments: ForwardArguments, key: HopperForwardKey, persistent: Bool, device: CUDADevice, stream: CUDAStream,
    alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let log2e: Float = 1.442_695_04
    let softcap = arguments.options.softcap
    let mBlocks = (shape.seqlenQ + key.blockM - 1) / key.blockM
    let items = (mBlocks + 1) / 2 * shape.headsQ * shape.batch
    var parameters = FAHopperForwardParams()
    try HopperTensorMaps.encode(
      [(arguments.q, key.blockM, \.tm_q), (arguments.k, key.blockN, \.tm_k), (arguments.v, key.blockN, \.tm_v)],
      into: &parameters, device: device)
    parameters.o = deviceMutablePointer(arguments.out.deviceAddress)
    parameters.lse = deviceMutablePointer(arguments.lse.deviceAddress)
    parameters.seqlen_q = Int32(shape.seqlenQ)
    parameters.seqlen_k = Int32(shape.seqlenK)
    parameters.heads_q = Int32(shape.headsQ)
    parameters.group = Int32(shape.groupSize)
    parameters.m_blocks = Int32(mBlocks)
    parameters.num_items = Int32(items)
    parameters.o_strides = FAStrides(arguments.out)
    parameters.lse_strides = FAStatsStrides(arguments.lse)
    parameters.scale_log2 = arguments.scale * log2e
    parameters.softcap_over = softcap > 0 ? arguments.scale / softcap : 0
    parameters.softcap_log2 = softcap * log2e
    (parameters.window_left, parameters.window_right) = kernelWindow(arguments.mask)
    // fp8: the descale factors (null where absent: the kernel uses 1) and their strides.
    let descale = arguments.descale
    parameters.q_descale = descale.q.map { devicePointer($0.deviceAddress) } ?? nil
    parameters.k_descale = descale.k.map { devicePointer($0.deviceAddress) } ?? nil
    parameters.v_descale = descale.v.map { devicePointer($0.deviceAddress) } ?? nil
    let strides: [Int64] = [descale.q, descale.k, descale.v].flatMap { (view: TensorView?) -> [Int64] in
      guard let view else { return [0, 0] }
      return [Int64(view.strides[0]), Int64(view.strides[1])]
    }
    parameters.descale_strides = (strides[0], strides[1], strides[2], strides[3], strides[4], strides[5])
    parameters.alibi_slopes = devicePointer(alibiSlopes)
    parameters.alibi_batch_stride = alibiBatchStride(arguments.options, shape)
    parameters.dropout = FADropoutParams(arguments.options, headsQ: shape.headsQ)
    let blocks = persistent ? min(items, device.multiprocessors) : items
    try device.loadedKernel(key).launch(
      grid: (blocks, 1, 1), block: (key.threads, 1, 1), sharedMemory: key.sharedMemoryBytes, parameters: parameters,
      stream: stream)
  }

  /// The backward's key/value kernel: dK and dV per key block, and in the fused form (a key
  /// built with dQ) the dQ additions into the scratch's accumulator (zeroed, fp32,
  /// `[batch, seqlenQ, headsQ, headDim]`).
  static func backwardKeyValue(
    _ arguments: BackwardArguments, key: HopperBackwardKey, scratch: BackwardScratch, device: CUDADevice,
    stream: CUDAStream, alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    var parameters = FAHopperBackwardParams()
    try encodeMaps(arguments, queryRows: HopperBackwardKey.blockM, keyRows: key.blockN, into: &parameters, device: device)
    parameters.lse2 = devicePointer(scratch.lse2)
    parameters.delta = devicePointer(scratch.delta)
    parameters.dq_accum = deviceMutablePointer(key.skipDQ ? 0 : scratch.accumulator)
    parameters.dk = deviceMutablePointer(arguments.dK.deviceAddress)
    parameters.dv = deviceMutablePointer(arguments.dV.deviceAddress)
    parameters.dk_strides = FAStrides(arguments.dK)
    parameters.dv_strides = FAStrides(arguments.dV)
    let problem = BackwardProblem(arguments)
    parameters.seqlen_q = problem.seqlenQ
    parameters.seqlen_k = problem.seqlenK
    parameters.heads_q = problem.headsQ
    parameters.group = problem.group
    parameters.scale = problem.scale
    parameters.scale_log2 = problem.scaleLog2
    parameters.window_left = problem.windowLeft
    parameters.window_right = problem.windowRight
    parameters.alibi_slopes = devicePointer(alibiSlopes)
    parameters.alibi_batch_stride = alibiBatchStride(arguments.options, shape)
    parameters.dropout = FADropoutParams(arguments.options, headsQ: shape.headsQ)
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenK + key.blockN - 1) / key.blockN, shape.headsKV, shape.batch), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// The split form's dQ kernel: writes `arguments.dQ` (scaled, storage dtype) directly.
  static func backwardDQ(
    _ arguments: BackwardArguments, key: HopperBackwardDQKey, scratch: BackwardScratch, device: CUDADevice,
    stream: CUDAStream, alibiSlopes: UInt64 = 0
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    let rows = HopperBackwardDQKey.blockM
    var parameters = FAHopperBackwardDQParams()
    try encodeMaps(arguments, queryRows: rows, keyRows: key.blockN, into: &parameters, device: device)
    parameters.lse2 = devicePointer(scratch.lse2)
    parameters.delta = devicePointer(scratch.delta)
    parameters.dq = deviceMutablePointer(arguments.dQ.deviceAddress)
    parameters.dq_strides = FAStrides(arguments.dQ)
    let problem = BackwardProblem(arguments)
    parameters.seqlen_q = problem.seqlenQ
    parameters.seqlen_k = problem.seqlenK
    parameters.heads_q = problem.headsQ
    parameters.group = problem.group
    parameters.scale = problem.scale
    parameters.scale_log2 = problem.scaleLog2
    parameters.window_left = problem.windowLeft
    parameters.window_right = problem.windowRight
    parameters.alibi_slopes = devicePointer(alibiSlopes)
    parameters.alibi_batch_stride = alibiBatchStride(arguments.options, shape)
    parameters.dropout = FADropoutParams(arguments.options, headsQ: shape.headsQ)
    try device.loadedKernel(key).launch(
      grid: ((shape.seqlenQ + rows - 1) / rows, shape.headsQ, shape.batch), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }

  /// Elements between two batch entries' ALiBi slopes: heads_q for a `(batch, heads_q)` table, else 0.
  private static func alibiBatchStride(_ options: AttentionOptions, _ shape: AttentionShape) -> Int64 {
    options.alibiSlopes?.batch == nil ? 0 : Int64(shape.headsQ)
  }

  /// The TMA maps both backward kernels take: Q and dO in boxes of `queryRows`, K and V of
  /// `keyRows`.
  private static func encodeMaps<Parameters: HopperBackwardParameters>(
    _ arguments: BackwardArguments, queryRows: Int, keyRows: Int, into parameters: inout Parameters,
    device: CUDADevice
  ) throws(FlashAttentionError) {
    try HopperTensorMaps.encode(
      [
        (arguments.q, queryRows, Parameters.qMap), (arguments.k, keyRows, Parameters.kMap),
        (arguments.v, keyRows, Parameters.vMap), (arguments.dOut, queryRows, Parameters.doutMap),
      ], into: &parameters, device: device)
  }

  /// Sizes, scales and the window, the fields both backward kernels share.
  private struct BackwardProblem {
    var seqlenQ, seqlenK, headsQ, group: Int32
    var scale, scaleLog2: Float
    var windowLeft, windowRight: Int32

    init(_ arguments: BackwardArguments) {
      let shape = arguments.shape
      seqlenQ = Int32(shape.seqlenQ)
      seqlenK = Int32(shape.seqlenK)
      headsQ = Int32(shape.headsQ)
      group = Int32(shape.groupSize)
      scale = arguments.scale
      scaleLog2 = arguments.scale * 1.442_695_04
      (windowLeft, windowRight) = kernelWindow(arguments.mask)
    }
  }
}

/// The parameter structs of the two Hopper backward kernels, which start with the same maps.
protocol HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { get }
  static var kMap: WritableKeyPath<Self, FATensorMap> { get }
  static var vMap: WritableKeyPath<Self, FATensorMap> { get }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { get }
}

extension FAHopperBackwardParams: HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { \.tm_q }
  static var kMap: WritableKeyPath<Self, FATensorMap> { \.tm_k }
  static var vMap: WritableKeyPath<Self, FATensorMap> { \.tm_v }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { \.tm_dout }
}

extension FAHopperBackwardDQParams: HopperBackwardParameters {
  static var qMap: WritableKeyPath<Self, FATensorMap> { \.tm_q }
  static var kMap: WritableKeyPath<Self, FATensorMap> { \.tm_k }
  static var vMap: WritableKeyPath<Self, FATensorMap> { \.tm_v }
  static var doutMap: WritableKeyPath<Self, FATensorMap> { \.tm_dout }
}
