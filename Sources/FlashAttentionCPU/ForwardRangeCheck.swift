import FlashAttentionCore

/// What the forward pass does after the kernels when a row's LSE says something went outside
/// float32: NaN or +inf, or -inf although the row sees keys.
///
/// That happens for two reasons. A NaN or inf in Q, K or V: then NaN belongs in the row, as a
/// standard attention would give it, and a row whose every score became -inf (which the kernels
/// treat as masked) is set to NaN too. Or finite inputs whose scores `scale · q·k` pass float32's
/// range (about 3.4e38; `|scale · s|` up to that is computed exactly as far as float32 goes): no
/// float32 result exists, and the call throws instead of returning a wrong number. Only the LSE
/// is read on the common path (one float per row); the inputs are scanned only when a row is
/// suspect.
enum ForwardRangeCheck {
  static func run(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    let shape = arguments.shape
    let mask = arguments.mask.clampedForKernels
    let lse = arguments.lse
    let values = lse.baseAddress.assumingMemoryBound(to: Float.self)
    var suspect: [(batch: Int, head: Int, row: Int)] = []
    for batch in 0..<shape.batch {
      for head in 0..<shape.headsQ {
        let base = batch * lse.strides[0] + head * lse.strides[1]
        for row in 0..<shape.seqlenQ {
          let value = values[base + row * lse.strides[2]]
          if value.isNaN || value == .infinity || (value == -.infinity && !mask.visibleKeys(forQuery: row).isEmpty) {
            suspect.append((batch, head, row))
          }
        }
      }
    }
    guard let first = suspect.first else { return }
    if allFinite(arguments.q) && allFinite(arguments.k) && allFinite(arguments.v) {
      throw .invalidArgument(
        name: "scale", value: "\(arguments.scale)",
        reason: "scale · q·kᵀ leaves float32's range (about 3.4e38) in query row \(first.row) of batch "
          + "\(first.batch), head \(first.head): there is no float32 result; scale q, k or the scale down")
    }
    // Non-finite inputs: rows that look masked get NaN, the others already hold it.
    let out = arguments.out
    for (batch, head, row) in suspect where values[batch * lse.strides[0] + head * lse.strides[1] + row * lse.strides[2]] == -.infinity {
      values[batch * lse.strides[0] + head * lse.strides[1] + row * lse.strides[2]] = .nan
      let base = batch * out.strides[0] + row * out.strides[1] + head * out.strides[2]
      for column in 0..<shape.headDimV { out.storeFloat(.nan, atElementOffset: base + column) }
    }
  }

  private static func allFinite(_ tensor: TensorView) -> Bool {
    let shape = tensor.shape
    let strides = tensor.strides
    for a in 0..<shape[0] {
      for b in 0..<shape[1] {
        for c in 0..<shape[2] {
          let base = a * strides[0] + b * strides[1] + c * strides[2]
          for d in 0..<shape[3] where !tensor.loadFloat(atElementOffset: base + d).isFinite { return false }
        }
      }
    }
    return true
  }
}
