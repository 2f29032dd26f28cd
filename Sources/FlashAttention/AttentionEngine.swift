#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FlashAttentionCPU
import FlashAttentionCUDA

/// Runs FlashAttention forward and backward on the chosen backend.
///
/// ```swift
/// let engine = try AttentionEngine(backend: .automatic)
/// let q = HostTensor(qValues, shape: [1, 1024, 8, 64])   // [batch, seqlen, heads, head_dim]
/// let (out, lse) = try engine.forward(q: q, k: k, v: v, options: AttentionOptions(causal: true))
/// ```
public struct AttentionEngine: Sendable {
  /// The backend that runs the calls.
  public let backend: any AttentionBackend
  /// Why this backend was chosen (for `.automatic`: why CUDA was not, when it was not).
  public let selectionReason: String

  /// Runs the calls on a backend the caller built (a custom or instrumented one); the engine
  /// still validates every call and handles empty problems.
  public init(backend: any AttentionBackend, selectionReason: String = "given by the caller") {
    self.backend = backend
    self.selectionReason = selectionReason
  }

  /// Resolves `backend`. `.automatic` never throws for a missing GPU; `.cuda` does.
  ///
  /// - Throws: `FlashAttentionError.backendUnavailable` when the requested backend cannot run.
  public init(backend choice: BackendChoice = .automatic) throws(FlashAttentionError) {
    var choice = choice
    if choice == .automatic, let override = getenv("FLASH_ATTENTION_BACKEND") {
      let text = String(cString: override)
      guard let parsed = BackendChoice(parsing: text) else {
        throw .invalidArgument(
          name: "FLASH_ATTENTION_BACKEND", value: text, reason: "must be cpu, cuda, cuda:N or auto")
      }
      choice = parsed
    }
    switch choice {
    case .cpu:
      backend = try CPUBackend()
      selectionReason = "cpu requested"
    case let .cuda(device):
      backend = try CUDABackend(device: device)
      selectionReason = "cuda:\(device) requested"
    case .automatic:
      do {
        backend = try CUDABackend(device: 0)
        selectionReason = "automatic: CUDA device 0 is usable"
      } catch {
        backend = try CPUBackend()
        selectionReason = "automatic: CPU, because \(error)"
      }
    }
  }

  /// Forward into caller-owned memory.
  ///
  /// - Parameters:
  ///   - q: `[batch, seqlen_q, heads_q, head_dim]`.
  ///   - k: `[batch, seqlen_k, heads_kv, head_dim]`.
  ///   - v: `[batch, seqlen_k, heads_kv, head_dim_v]`.
  ///   - out: `[batch, seqlen_q, heads_q, head_dim_v]`, q's dtype (bfloat16 or float16 for
  ///     float8_e4m3fn inputs).
  ///   - lse: float32 `[batch, heads_q, seqlen_q]`; -inf for rows that see no key.
  ///   - descale: for float8_e4m3fn inputs, float32 `[batch, heads_kv]` factors of q, k and v
  ///     (each 1 when absent); refused for other dtypes.
  ///   - stream: for CUDA memory, a stream of the caller's: the work is queued there and the call
  ///     returns without waiting. `nil` (the default) runs on the engine's own stream and returns
  ///     when the results are ready.
  /// - Throws: `FlashAttentionError` naming the first invalid argument, or the backend's failure.
  public func forward(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView,
    options: AttentionOptions = AttentionOptions(), descale: FP8Descale = .none, stream: CallerStream? = nil
  ) throws(FlashAttentionError) {
    let arguments = try ForwardArguments(q: q, k: k, v: v, out: out, lse: lse, options: options, descale: descale)
    if EmptyProblem.forward(arguments) { return }
    if let stream {
      try backend.forward(arguments, stream: stream)
    } else {
      try backend.forward(arguments)
    }
  }

  /// Backward into caller-owned memory: dQ, dK, dV from dOut and the forward's out and lse
  /// (`stream` as in `forward`).
  public func backward(
    q: TensorView, k: TensorView, v: TensorView, out: TensorView, lse: TensorView,
    dOut: TensorView, dQ: TensorView, dK: TensorView, dV: TensorView,
    options: AttentionOptions = AttentionOptions(), stream: CallerStream? = nil
  ) throws(FlashAttentionError) {
    let arguments = try BackwardArguments(
      q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, options: options)
    if EmptyProblem.backward(arguments) { return }
    if let stream {
      try backend.backward(arguments, stream: stream)
    } else {
      try backend.backward(arguments)
    }
  }

  /// Forward on host tensors, allocating the output and the LSE.
  ///
  /// - Throws: as `forward(q:k:v:out:lse:)`, and `.outOfMemory` when the outputs do not fit in
  ///   the memory left (checked before allocating).
  public func forward(
    q: HostTensor, k: HostTensor, v: HostTensor, options: AttentionOptions = AttentionOptions()
  ) throws(FlashAttentionError) -> (out: HostTensor, lse: HostTensor) {
    let shape = try ForwardArguments.inferredShape(q: q.view, k: k.view, v: v.view)
    // fp8 inputs give a bfloat16 output, as FlashAttention-3's do.
    let out = try HostTensor(shape: shape.oShape, dtype: q.dtype.isFloat8 ? .bfloat16 : q.dtype, name: "out")
    let lse = try HostTensor(shape: shape.lseShape, dtype: .float32, name: "lse")
    try forward(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options)
    return (out, lse)
  }

  /// Backward on host tensors, allocating dQ, dK, dV.
  public func backward(
    q: HostTensor, k: HostTensor, v: HostTensor, out: HostTensor, lse: HostTensor, dOut: HostTensor,
    options: AttentionOptions = AttentionOptions()
  ) throws(FlashAttentionError) -> (dQ: HostTensor, dK: HostTensor, dV: HostTensor) {
    let shape = try ForwardArguments.inferredShape(q: q.view, k: k.view, v: v.view)
    let dQ = try HostTensor(shape: shape.qShape, dtype: q.dtype, name: "dq")
    let dK = try HostTensor(shape: shape.kShape, dtype: q.dtype, name: "dk")
    let dV = try HostTensor(shape: shape.vShape, dtype: q.dtype, name: "dv")
    try backward(
      q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view,
      dQ: dQ.view, dK: dK.view, dV: dV.view, options: options)
    return (dQ, dK, dV)
  }
}
