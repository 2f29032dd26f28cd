import CFlashAttention
import FlashAttention
import FlashAttentionCABI
import FlashAttentionTestSupport
import Testing

/// The C interface (`flash_attention.h`) under the same pass rule as every backend: the verify
/// matrix runs through `fa_forward` / `fa_backward` as a C caller makes them, with the tensors
/// as `fa_tensor` descriptors (the strided layout included) and the options as `fa_options`.
/// `scripts/check-c-abi.sh` checks the same from a real C program (float32, the same 1e-4).
@Suite("C interface against the float64 reference")
struct CInterfaceVerificationTests {
  /// The problems in float32, and the ones with masks, softcap, scale or strides also in the
  /// half precisions (the dtype codes), to keep the debug-build reference time down.
  static let halfPrecisionProblems = VerificationMatrix.standard.filter {
    $0.layout != .contiguous || $0.options.softcap > 0 || $0.options.window != nil || $0.name.hasPrefix("odd")
  }

  static var engine: AttentionEngine { AttentionEngine(backend: CInterfaceBackend(), selectionReason: "C interface") }

  @Test("the verify matrix in float32", arguments: VerificationMatrix.standard)
  func float32(_ problem: AttentionProblem) {
    expectPasses(problem, dtype: .float32, engine: Self.engine)
  }

  @Test("masks, softcap and strides in fp16 and bf16", arguments: halfPrecisionProblems, [DType.float16, .bfloat16])
  func halfPrecision(_ problem: AttentionProblem, _ dtype: DType) {
    expectPasses(problem, dtype: dtype, engine: Self.engine)
  }
}

/// A backend that goes through the exported C functions instead of calling a backend directly.
struct CInterfaceBackend: AttentionBackend {
  var name: String { "c-abi" }

  func forward(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    let tensors = [arguments.q, arguments.k, arguments.v, arguments.out, arguments.lse].map(Self.descriptor)
    let status = Self.withOptions(arguments.options) { options in
      withUnsafePointers(tensors) { t in fa_forward(t[0], t[1], t[2], t[3], t[4], options, nil) }
    }
    try Self.check(status)
  }

  func backward(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    let tensors = [
      arguments.q, arguments.k, arguments.v, arguments.out, arguments.lse, arguments.dOut, arguments.dQ, arguments.dK,
      arguments.dV,
    ].map(Self.descriptor)
    let status = Self.withOptions(arguments.options) { options in
      withUnsafePointers(tensors) { t in fa_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], options, nil) }
    }
    try Self.check(status)
  }

  static func check(_ status: Int32) throws(FlashAttentionError) {
    guard status != 0 else { return }
    let message = fa_last_error_message().map { String(cString: $0) } ?? "(no message)"
    throw .invalidArgument(name: "fa status", value: "\(status)", reason: message)
  }

  static func options(_ options: AttentionOptions) -> fa_options {
    var c = fa_options_default()
    c.softmax_scale = options.scale ?? 0
    c.causal = options.causal ? 1 : 0
    c.window_left = Int64(options.window?.left ?? -1)
    c.window_right = Int64(options.window?.right ?? -1)
    c.softcap = options.softcap
    c.deterministic = options.deterministic ? 1 : 0
    return c
  }

  /// `options` as `fa_options`, ALiBi slopes (a float32 host tensor) and dropout included, alive
  /// for the call.
  static func withOptions(_ options: AttentionOptions, _ body: (UnsafePointer<fa_options>) -> Int32) -> Int32 {
    var c = Self.options(options)
    if let dropout = options.activeDropout {
      c.dropout_p = dropout.probability
      c.dropout_seed = dropout.seed
      c.dropout_offset = dropout.offset
    }
    guard let slopes = options.alibiSlopes else { return body(&c) }
    let shape = slopes.batch.map { [$0, slopes.values.count / max($0, 1)] } ?? [slopes.values.count]
    let table = HostTensor(slopes.values, shape: shape)
    var descriptor = Self.descriptor(table.view)
    return withExtendedLifetime(table) {
      withUnsafePointer(to: &descriptor) { slopesPointer in
        c.alibi_slopes = slopesPointer
        return body(&c)
      }
    }
  }

  static func descriptor(_ view: TensorView) -> fa_tensor {
    var tensor = fa_tensor()
    tensor.data = view.baseAddress
    tensor.device_type = Int32(FA_DEVICE_CPU.rawValue)
    tensor.dtype =
      switch view.dtype {
      case .float32: Int32(FA_DTYPE_FLOAT32.rawValue)
      case .float16: Int32(FA_DTYPE_FLOAT16.rawValue)
      case .bfloat16: Int32(FA_DTYPE_BFLOAT16.rawValue)
      case .float8E4M3: Int32(FA_DTYPE_FLOAT8_E4M3.rawValue)
      }
    tensor.rank = Int32(view.shape.count)
    withUnsafeMutableBytes(of: &tensor.shape) { shape in
      withUnsafeMutableBytes(of: &tensor.strides) { strides in
        for axis in view.shape.indices {
          shape.storeBytes(of: Int64(view.shape[axis]), toByteOffset: axis * 8, as: Int64.self)
          strides.storeBytes(of: Int64(view.strides[axis]), toByteOffset: axis * 8, as: Int64.self)
        }
      }
    }
    return tensor
  }
}

/// Calls `body` with a pointer to each of `values` (kept alive for the call).
private func withUnsafePointers<R>(_ values: [fa_tensor], _ body: ([UnsafePointer<fa_tensor>]) -> R) -> R {
  values.withUnsafeBufferPointer { buffer in
    body(buffer.indices.compactMap { index in buffer.baseAddress.map { $0 + index } })
  }
}
