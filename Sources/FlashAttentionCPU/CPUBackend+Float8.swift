import FlashAttentionCore

extension CPUBackend {
  /// The fp8 forward: q, k and v dequantised to float32 (descales applied), the float32 forward,
  /// and the output rounded to `out`'s bfloat16 or float16. Exact up to float32 arithmetic, so
  /// more accurate than the GPU kernel (which also rounds P to e4m3); extra memory is a float32
  /// copy of q, k, v and out.
  func forwardFloat8(_ arguments: ForwardArguments, keySplits: Int) throws(FlashAttentionError) {
    let shape = arguments.shape
    let inputs = try FP8Dequantisation.inputs(
      q: arguments.q, k: arguments.k, v: arguments.v, descale: arguments.descale, headsKV: shape.headsKV)
    let wideOut = try HostTensor(shape: shape.oShape, dtype: .float32, name: "out (float32)")
    let wide = try ForwardArguments(
      q: inputs.q.view, k: inputs.k.view, v: inputs.v.view, out: wideOut.view, lse: arguments.lse,
      options: arguments.options)
    try forward(wide, keySplits: keySplits)
    let out = arguments.out
    let source = wideOut.view
    var index = 0
    for b in 0..<shape.batch {
      for i in 0..<shape.seqlenQ {
        for h in 0..<shape.headsQ {
          let base = out.offset([b, i, h, 0])
          for c in 0..<shape.headDimV {
            out.storeFloat(source.loadFloat(atElementOffset: index), atElementOffset: base + c)
            index += 1
          }
        }
      }
    }
  }
}
