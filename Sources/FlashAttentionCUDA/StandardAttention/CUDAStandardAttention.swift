import FlashAttentionCore
import _FlashAttentionKernelABI

/// "Standard attention" on the GPU: the baseline FlashAttention is measured against. It
/// materializes the scores S and probabilities P of the whole `batch × heads × seqlen_q ×
/// seqlen_k` problem in fp32 device memory: a GEMM (S = scale·QKᵀ, masked), a row softmax
/// (P, LSE), a GEMM (O = PV); the backward pass recomputes P from the LSE, forms dP = dO·Vᵀ and
/// dS = P∘(dP − rowsum(dO∘O)) in memory, and runs three more GEMMs (dV = Pᵀ·dO, dQ = scale·dS·K,
/// dK = scale·dSᵀ·Q, summed over GQA groups).
///
/// The GEMMs are plain fp32 CUDA-core tilings (64 × 64 tiles through shared memory), so this
/// is a baseline for memory traffic and scaling, not a tuned GEMM. Storage fp16 or bf16, any
/// strides with unit last stride; causal and window masks; no softcap. The caller provides the
/// workspace (`forwardWorkspaceBytes` / `backwardWorkspaceBytes`), so a benchmark allocates it
/// once, outside the timed region, and an allocation that does not fit fails cleanly as
/// `.outOfMemory` before any kernel runs.
package struct CUDAStandardAttention: Sendable {
  package let device: CUDADevice

  package init(device: CUDADevice) {
    self.device = device
  }

  /// Bytes of the fp32 S/P matrix the forward pass needs.
  package static func forwardWorkspaceBytes(for shape: AttentionShape) -> Int {
    shape.batch * shape.headsQ * shape.seqlenQ * shape.seqlenK * 4
  }

  /// Bytes of the fp32 P and dP/dS matrices the backward pass needs.
  package static func backwardWorkspaceBytes(for shape: AttentionShape) -> Int {
    2 * forwardWorkspaceBytes(for: shape)
  }

  /// Queues the forward pass: S into `workspace`, softmax in place, O = PV.
  package func enqueueForward(
    _ arguments: ForwardArguments, workspace: CUDABuffer, on stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    try check(arguments.q, arguments.options, workspace: workspace, needs: Self.forwardWorkspaceBytes(for: shape))
    let scores = workspace.address
    try launchScores(
      a: arguments.q, b: arguments.k, into: scores, shape: shape, mode: 0, scale: arguments.scale,
      mask: arguments.mask, lse: arguments.lse, stream: stream)
    let softmax = FAStandardSoftmaxParams(
      scores: deviceMutablePointer(scores), lse: deviceMutablePointer(arguments.lse.deviceAddress),
      lse_strides: FAStatsStrides(arguments.lse), seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK),
      heads_q: Int32(shape.headsQ))
    try kernel(.softmax, arguments.q.dtype).launch(
      grid: (shape.seqlenQ, shape.batch * shape.headsQ, 1), block: (256, 1, 1), parameters: softmax, stream: stream)
    try launchProduct(
      .product, p: scores, b: arguments.v, out: arguments.out, shape: shape, rows: shape.seqlenQ,
      width: shape.headDimV, outerHeads: shape.headsQ, factor: 1, stream: stream)
  }

  /// Queues the backward pass: P and dS in `workspace`, then dV, dQ, dK.
  package func enqueueBackward(
    _ arguments: BackwardArguments, workspace: CUDABuffer, on stream: CUDAStream
  ) throws(FlashAttentionError) {
    let shape = arguments.shape
    try check(arguments.q, arguments.options, workspace: workspace, needs: Self.backwardWorkspaceBytes(for: shape))
    let probabilities = workspace.address
    let gradient = workspace.address + UInt64(Self.forwardWorkspaceBytes(for: shape))
    try launchScores(
      a: arguments.q, b: arguments.k, into: probabilities, shape: shape, mode: 1, scale: arguments.scale,
      mask: arguments.mask, lse: arguments.lse, stream: stream)
    try launchScores(
      a: arguments.dOut, b: arguments.v, into: gradient, shape: shape, mode: 2, scale: 1,
      mask: arguments.mask, lse: arguments.lse, stream: stream)
    let softmax = FAStandardSoftmaxBackwardParams(
      p: devicePointer(probabilities), ds: deviceMutablePointer(gradient),
      dout: devicePointer(arguments.dOut.deviceAddress), dout_strides: FAStrides(arguments.dOut),
      out: devicePointer(arguments.out.deviceAddress), out_strides: FAStrides(arguments.out),
      seqlen_q: Int32(shape.seqlenQ), seqlen_k: Int32(shape.seqlenK), head_dim_v: Int32(shape.headDimV),
      heads_q: Int32(shape.headsQ))
    try kernel(.softmaxBackward, arguments.q.dtype).launch(
      grid: (shape.seqlenQ, shape.batch * shape.headsQ, 1), block: (256, 1, 1), parameters: softmax, stream: stream)
    try launchProduct(
      .transposedProduct, p: probabilities, b: arguments.dOut, out: arguments.dV, shape: shape, rows: shape.seqlenK,
      width: shape.headDimV, outerHeads: shape.headsKV, factor: 1, stream: stream)
    try launchProduct(
      .product, p: gradient, b: arguments.k, out: arguments.dQ, shape: shape, rows: shape.seqlenQ,
      width: shape.headDim, outerHeads: shape.headsQ, factor: arguments.scale, stream: stream)
    try launchProduct(
      .transposedProduct, p: gradient, b: arguments.q, out: arguments.dK, shape: shape, rows: shape.seqlenK,
      width: shape.headDim, outerHeads: shape.headsKV, factor: arguments.scale, stream: stream)
  }

  /// `standard_gemm_abt`: a [sq × sk] fp32 matrix per query head from A·Bᵀ over the head dim.
  private func launchScores(
    a: TensorView, b: TensorView, into matrix: UInt64, shape: AttentionShape, mode: Int32, scale: Float,
    mask: AttentionMask, lse: TensorView, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let parameters = FAStandardScoresParams(
      a: devicePointer(a.deviceAddress), a_strides: FAStrides(a), b: devicePointer(b.deviceAddress),
      b_strides: FAStrides(b), c: deviceMutablePointer(matrix), lse: devicePointer(lse.deviceAddress),
      lse_strides: FAStatsStrides(lse), rows: Int32(shape.seqlenQ), columns: Int32(shape.seqlenK),
      depth: Int32(a.shape[3]), heads_q: Int32(shape.headsQ), group: Int32(shape.groupSize), scale: scale,
      window_left: kernelWindow(mask).left, window_right: kernelWindow(mask).right, mode: mode)
    try kernel(.scores, a.dtype).launch(
      grid: (Self.tiles(shape.seqlenK), Self.tiles(shape.seqlenQ), shape.batch * shape.headsQ), block: (256, 1, 1),
      parameters: parameters, stream: stream)
  }

  /// `standard_gemm_pb` / `standard_gemm_ptb`: an fp32 matrix (or its transpose) times a tensor.
  private func launchProduct(
    _ entry: StandardAttentionKey.Entry, p: UInt64, b: TensorView, out: TensorView, shape: AttentionShape, rows: Int,
    width: Int, outerHeads: Int, factor: Float, stream: CUDAStream
  ) throws(FlashAttentionError) {
    let parameters = FAStandardProductParams(
      p: devicePointer(p), b: devicePointer(b.deviceAddress), b_strides: FAStrides(b),
      out: deviceMutablePointer(out.deviceAddress), out_strides: FAStrides(out), seqlen_q: Int32(shape.seqlenQ),
      seqlen_k: Int32(shape.seqlenK), width: Int32(width), heads_q: Int32(shape.headsQ),
      group: Int32(shape.groupSize), factor: factor)
    try kernel(entry, b.dtype).launch(
      grid: (Self.tiles(width), Self.tiles(rows), shape.batch * outerHeads), block: (256, 1, 1),
      parameters: parameters, stream: stream)
  }

  private static func tiles(_ count: Int) -> Int { (count + 63) / 64 }

  private func check(
    _ q: TensorView, _ options: AttentionOptions, workspace: CUDABuffer, needs bytes: Int
  ) throws(FlashAttentionError) {
    if q.dtype == .float32 {
      throw .unsupported(backend: "cuda-standard", feature: "float32 storage (fp16 and bf16 only)")
    }
    if options.softcap > 0 {
      throw .unsupported(backend: "cuda-standard", feature: "softcap")
    }
    try CUDACallChecks.features(options, backend: "cuda-standard")
    if options.alibiSlopes != nil { throw .unsupported(backend: "cuda-standard", feature: "ALiBi") }
    if q.location != .cuda(device: device.ordinal) {
      throw .invalidArgument(name: "q.location", value: "\(q.location)", reason: "must be cuda:\(device.ordinal)")
    }
    if workspace.byteCount < bytes {
      throw .invalidArgument(
        name: "workspace.byteCount", value: "\(workspace.byteCount)", reason: "must be at least \(bytes)")
    }
  }

  /// The loaded kernel `entry` for `dtype` (compiled once per process and device).
  func kernel(_ entry: StandardAttentionKey.Entry, _ dtype: DType) throws(FlashAttentionError) -> CUDAFunction {
    try device.loadedKernel(StandardAttentionKey(entry: entry, dtype: dtype))
  }
}
