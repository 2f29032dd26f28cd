import FlashAttentionCUDA

extension CUDABenchmarkRunner {
  /// Checks the CUDA standard attention against the float64 reference before it is timed: a
  /// small GQA problem with odd lengths (sq 129, sk 200), causal and not, forward and backward,
  /// NaN-poisoned outputs. Returns a one-line summary and whether every error stays within
  /// 8 units of the storage roundoff (relative L2) with no non-finite value.
  package func checkStandard(dtype: DType) -> (passed: Bool, summary: String) {
    var parts: [String] = []
    var passed = true
    for causal in [false, true] {
      let shape = AttentionShape(batch: 2, seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64)
      do throws(FlashAttentionError) {
        let errors = try standardErrors(shape: shape, causal: causal, dtype: dtype)
        let tolerance = 8 * dtype.unitRoundoff
        for (name, metrics) in errors {
          passed = passed && metrics.passes(tolerance: tolerance)
          parts.append("\(causal ? "causal " : "")\(name) \(metrics.relativeL2)")
        }
      } catch {
        passed = false
        parts.append("\(causal ? "causal: " : "")\(error)")
      }
    }
    return (passed, parts.joined(separator: ", "))
  }

  private func standardErrors(
    shape: AttentionShape, causal: Bool, dtype: DType
  ) throws(FlashAttentionError) -> [(String, ErrorMetrics)] {
    let device = flash.device
    let stream = flash.stream
    var random = BenchmarkRandom(seed: 20_261_125 &+ (causal ? 1 : 0))
    let options = AttentionOptions(causal: causal)
    var host: [HostTensor] = []
    for tensorShape in [shape.qShape, shape.kShape, shape.vShape, shape.oShape] {
      host.append(try random.tensor(tensorShape, dtype: dtype))
    }
    let outputs: [([Int], DType)] = [
      (shape.oShape, dtype), (shape.lseShape, .float32), (shape.qShape, dtype), (shape.kShape, dtype),
      (shape.vShape, dtype),
    ]
    var buffers: [CUDABuffer] = []
    for tensor in host {
      let buffer = try CUDABuffer(device: device, byteCount: tensor.byteCount)
      try buffer.upload(tensor, stream: stream)
      buffers.append(buffer)
    }
    for (tensorShape, type) in outputs {
      let buffer = try CUDABuffer(device: device, byteCount: tensorShape.reduce(1, *) * type.byteSize)
      try buffer.fill(byte: 0xFF, stream: stream)
      buffers.append(buffer)
    }
    let views = zip(buffers, [(shape.qShape, dtype), (shape.kShape, dtype), (shape.vShape, dtype), (shape.oShape, dtype)] + outputs)
      .map { $0.0.view(dtype: $0.1.1, shape: $0.1.0) }
    let forward = try ForwardArguments(q: views[0], k: views[1], v: views[2], out: views[4], lse: views[5], options: options)
    let backward = try BackwardArguments(
      q: views[0], k: views[1], v: views[2], out: views[4], lse: views[5], dOut: views[3], dQ: views[6], dK: views[7],
      dV: views[8], options: options)
    let workspace = try CUDABuffer(device: device, byteCount: CUDAStandardAttention.backwardWorkspaceBytes(for: shape))
    try standard.enqueueForward(forward, workspace: workspace, on: stream)
    try standard.enqueueBackward(backward, workspace: workspace, on: stream)
    try stream.synchronize()
    var results: [HostTensor] = []
    for (index, (tensorShape, type)) in outputs.enumerated() {
      let tensor = try HostTensor(shape: tensorShape, dtype: type, name: "result \(tensorShape)")
      try buffers[4 + index].download(tensor, stream: stream)
      results.append(tensor)
    }
    let reference = try ReferenceAttention.forward(q: host[0].view, k: host[1].view, v: host[2].view, options: options)
    let gradients = try ReferenceAttention.backward(
      q: host[0].view, k: host[1].view, v: host[2].view, dOut: host[3].view, options: options)
    return [
      ("out", ErrorMetrics(actual: results[0].floats(), expected: reference.out)),
      ("lse", ErrorMetrics(actual: results[1].floats(), expected: reference.lse)),
      ("dq", ErrorMetrics(actual: results[2].floats(), expected: gradients.dQ)),
      ("dk", ErrorMetrics(actual: results[3].floats(), expected: gradients.dK)),
      ("dv", ErrorMetrics(actual: results[4].floats(), expected: gradients.dV)),
    ]
  }
}
