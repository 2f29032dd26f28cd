import CFlashAttention
import FlashAttention

// The functions of flash_attention.h. Each reads its descriptors (typed errors name the C
// argument), resolves the engine for q's memory, and runs; `StatusCode.run` turns any error into
// a return code and this thread's message.

@_cdecl("fa_options_default")
public func faOptionsDefault() -> fa_options {
  OptionsDescriptor.defaults
}

@_cdecl("fa_forward")
public func faForward(
  _ q: UnsafePointer<fa_tensor>?, _ k: UnsafePointer<fa_tensor>?, _ v: UnsafePointer<fa_tensor>?,
  _ out: UnsafePointer<fa_tensor>?, _ lse: UnsafePointer<fa_tensor>?, _ options: UnsafePointer<fa_options>?,
  _ stream: UnsafeMutableRawPointer?
) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    let q = try TensorDescriptor.view(q, name: "q")
    let k = try TensorDescriptor.view(k, name: "k")
    let v = try TensorDescriptor.view(v, name: "v")
    let out = try TensorDescriptor.view(out, name: "out")
    let lse = try TensorDescriptor.view(lse, name: "lse")
    let descale = try OptionsDescriptor.descale(options)
    let options = try OptionsDescriptor.options(options, acceptsDescale: true)
    let engine = try engine(for: q, stream: stream)
    try engine.forward(
      q: q, k: k, v: v, out: out, lse: lse, options: options, descale: descale, stream: stream.map(CallerStream.init))
  }
}

@_cdecl("fa_backward")
public func faBackward(
  _ q: UnsafePointer<fa_tensor>?, _ k: UnsafePointer<fa_tensor>?, _ v: UnsafePointer<fa_tensor>?,
  _ out: UnsafePointer<fa_tensor>?, _ lse: UnsafePointer<fa_tensor>?, _ dOut: UnsafePointer<fa_tensor>?,
  _ dQ: UnsafePointer<fa_tensor>?, _ dK: UnsafePointer<fa_tensor>?, _ dV: UnsafePointer<fa_tensor>?,
  _ options: UnsafePointer<fa_options>?, _ stream: UnsafeMutableRawPointer?
) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    let q = try TensorDescriptor.view(q, name: "q")
    let k = try TensorDescriptor.view(k, name: "k")
    let v = try TensorDescriptor.view(v, name: "v")
    let out = try TensorDescriptor.view(out, name: "out")
    let lse = try TensorDescriptor.view(lse, name: "lse")
    let dOut = try TensorDescriptor.view(dOut, name: "dout")
    let dQ = try TensorDescriptor.view(dQ, name: "dq")
    let dK = try TensorDescriptor.view(dK, name: "dk")
    let dV = try TensorDescriptor.view(dV, name: "dv")
    let options = try OptionsDescriptor.options(options)
    let engine = try engine(for: q, stream: stream)
    try engine.backward(
      q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, options: options,
      stream: stream.map(CallerStream.init))
  }
}

@_cdecl("fa_backend_status")
public func faBackendStatus(_ deviceType: Int32, _ deviceIndex: Int32) -> Int32 {
  StatusCode.run { () throws(FlashAttentionError) in
    var descriptor = fa_tensor()
    descriptor.device_type = deviceType
    descriptor.device_index = deviceIndex
    descriptor.dtype = Int32(FA_DTYPE_FLOAT32.rawValue)
    descriptor.rank = 1
    let view = try withUnsafePointer(to: descriptor) { pointer throws(FlashAttentionError) in
      try TensorDescriptor.view(pointer, name: "device")
    }
    _ = try EngineCache.engine(for: view.location)
  }
}

/// The engine for q's memory; a stream only makes sense for CUDA memory.
func engine(for q: TensorView, stream: UnsafeMutableRawPointer?) throws(FlashAttentionError) -> AttentionEngine {
  if stream != nil, q.location == .host {
    throw .invalidArgument(name: "stream", value: "non-NULL", reason: "CPU tensors take no stream (pass NULL)")
  }
  return try EngineCache.engine(for: q.location)
}
