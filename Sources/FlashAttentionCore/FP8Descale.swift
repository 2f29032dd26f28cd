/// The dequantisation factors of an fp8 forward (FlashAttention-3's `q_descale`, `k_descale`,
/// `v_descale`): float32 `[batch, heads_kv]` views in q's memory, any strides. The attention is
/// computed on `q · q_descale`, `k · k_descale` and `v · v_descale`, where query head `h` uses
/// the factor of its kv head `h / (heads_q / heads_kv)`. A factor left out is 1.
public struct FP8Descale: Sendable {
  public var q: TensorView?
  public var k: TensorView?
  public var v: TensorView?

  public init(q: TensorView? = nil, k: TensorView? = nil, v: TensorView? = nil) {
    self.q = q
    self.k = k
    self.v = v
  }

  /// No factors (all 1).
  public static var none: FP8Descale { FP8Descale() }

  public var isEmpty: Bool { q == nil && k == nil && v == nil }

  /// The factors that are given, with their argument names.
  public var named: [(name: String, view: TensorView)] {
    [("q_descale", q), ("k_descale", k), ("v_descale", v)].compactMap { name, view in view.map { (name, $0) } }
  }

  /// Checks the factors against the problem: only fp8 inputs take them; each is float32
  /// `[batch, heads_kv]` in q's memory.
  package func validate(dtype: DType, shape: AttentionShape, location: MemoryLocation) throws(FlashAttentionError) {
    for (name, view) in named {
      if !dtype.isFloat8 {
        throw .invalidArgument(name: name, value: "given", reason: "descale factors apply to float8_e4m3fn inputs only (q is \(dtype))")
      }
      try TensorChecks.expect(view, name, shape: [shape.batch, shape.headsKV], dtype: .float32, location: location)
    }
  }

  /// The factor of (batch, kv head) from a host view; 1 when absent.
  package static func factor(_ view: TensorView?, batch: Int, kvHead: Int) -> Float {
    guard let view else { return 1 }
    return view.loadFloat(atElementOffset: batch * view.strides[0] + kvHead * view.strides[1])
  }
}

/// fp8 inputs widened to float32 host tensors with their descale factors applied: how the CPU
/// backend and the references see an fp8 problem.
package enum FP8Dequantisation {
  /// `tensor` (`[batch, seqlen, heads, dim]`, host) times the factor of each row's kv head, as a
  /// contiguous float32 tensor. `headsKV` maps a head of `tensor` to its kv head.
  package static func dequantise(
    _ tensor: TensorView, descale: TensorView?, headsKV: Int, name: String
  ) throws(FlashAttentionError) -> HostTensor {
    let result = try HostTensor(shape: tensor.shape, dtype: .float32, name: name)
    let out = result.view
    let (batch, seqlen, heads, width) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
    let group = max(heads / max(headsKV, 1), 1)
    var index = 0
    for b in 0..<batch {
      for s in 0..<seqlen {
        for h in 0..<heads {
          let factor = FP8Descale.factor(descale, batch: b, kvHead: h / group)
          let base = tensor.offset([b, s, h, 0])
          for c in 0..<width {
            out.storeFloat(tensor.loadFloat(atElementOffset: base + c) * factor, atElementOffset: index)
            index += 1
          }
        }
      }
    }
    return result
  }

  /// q, k and v of an fp8 problem, dequantised (see ``dequantise(_:descale:headsKV:name:)``).
  package static func inputs(
    q: TensorView, k: TensorView, v: TensorView, descale: FP8Descale, headsKV: Int
  ) throws(FlashAttentionError) -> (q: HostTensor, k: HostTensor, v: HostTensor) {
    (
      try dequantise(q, descale: descale.q, headsKV: headsKV, name: "q (dequantised)"),
      try dequantise(k, descale: descale.k, headsKV: headsKV, name: "k (dequantised)"),
      try dequantise(v, descale: descale.v, headsKV: headsKV, name: "v (dequantised)")
    )
  }
}
