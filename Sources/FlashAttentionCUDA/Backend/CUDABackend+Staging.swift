import FlashAttentionCore

/// Host views run through device buffers: inputs are packed contiguous and uploaded, outputs
/// are computed into device buffers and copied back into the caller's (possibly strided) views.
struct DeviceStaging {
  let device: CUDADevice
  let stream: CUDAStream
  private(set) var buffers: [CUDABuffer] = []

  init(device: CUDADevice, stream: CUDAStream) {
    self.device = device
    self.stream = stream
  }

  /// A contiguous device copy of a host view.
  mutating func upload(_ view: TensorView) throws(FlashAttentionError) -> TensorView {
    let bytes = view.elementCount * view.dtype.byteSize
    let buffer = try CUDABuffer(device: device, byteCount: bytes)
    buffers.append(buffer)
    if bytes > 0 {
      if view.isContiguous {
        try buffer.upload(from: view.baseAddress, byteCount: bytes, stream: stream)
        try stream.synchronize()
      } else {
        let packed = HostTensor(shape: view.shape, dtype: view.dtype)
        HostCopy.copy(from: view, to: packed.view)
        try buffer.upload(from: packed.storage, byteCount: bytes, stream: stream)
        try stream.synchronize()
      }
    }
    return buffer.view(dtype: view.dtype, shape: view.shape)
  }

  /// A contiguous device buffer shaped like a host output view (contents undefined).
  mutating func output(like view: TensorView) throws(FlashAttentionError) -> TensorView {
    let buffer = try CUDABuffer(device: device, byteCount: view.elementCount * view.dtype.byteSize)
    buffers.append(buffer)
    return buffer.view(dtype: view.dtype, shape: view.shape)
  }

  /// Copies a device result back into the caller's host view (after the stream finished).
  func download(_ source: TensorView, into destination: TensorView) throws(FlashAttentionError) {
    let bytes = source.elementCount * source.dtype.byteSize
    if bytes == 0 { return }
    guard let buffer = buffers.first(where: { $0.address == source.deviceAddress }) else { return }
    if destination.isContiguous {
      try buffer.download(to: destination.baseAddress, byteCount: bytes, stream: stream)
      try stream.synchronize()
    } else {
      let packed = HostTensor(shape: source.shape, dtype: source.dtype)
      try buffer.download(to: packed.storage, byteCount: bytes, stream: stream)
      try stream.synchronize()
      HostCopy.copy(from: packed.view, to: destination)
    }
  }
}

/// Element-wise copy between host views of the same shape and dtype (any strides).
enum HostCopy {
  static func copy(from source: TensorView, to destination: TensorView) {
    let shape = source.shape
    let size = source.dtype.byteSize
    guard !shape.contains(0) else { return }
    var index = [Int](repeating: 0, count: shape.count)
    while true {
      let from = source.baseAddress + source.offset(index) * size
      let to = destination.baseAddress + destination.offset(index) * size
      to.copyMemory(from: from, byteCount: size)
      var axis = shape.count - 1
      while axis >= 0 {
        index[axis] += 1
        if index[axis] < shape[axis] { break }
        index[axis] = 0
        axis -= 1
      }
      if axis < 0 { return }
    }
  }
}

extension CUDABackend {
  func forwardStaged(_ arguments: ForwardArguments) throws(FlashAttentionError) {
    var staging = DeviceStaging(device: device, stream: stream)
    let deviceArguments = try ForwardArguments(
      q: staging.upload(arguments.q), k: staging.upload(arguments.k), v: staging.upload(arguments.v),
      out: staging.output(like: arguments.out), lse: staging.output(like: arguments.lse),
      options: arguments.options)
    try enqueueForward(deviceArguments, on: stream)
    try stream.synchronize()
    try staging.download(deviceArguments.out, into: arguments.out)
    try staging.download(deviceArguments.lse, into: arguments.lse)
  }

  func backwardStaged(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    var staging = DeviceStaging(device: device, stream: stream)
    let deviceArguments = try BackwardArguments(
      q: staging.upload(arguments.q), k: staging.upload(arguments.k), v: staging.upload(arguments.v),
      out: staging.upload(arguments.out), lse: staging.upload(arguments.lse),
      dOut: staging.upload(arguments.dOut), dQ: staging.output(like: arguments.dQ),
      dK: staging.output(like: arguments.dK), dV: staging.output(like: arguments.dV),
      options: arguments.options)
    try enqueueBackward(deviceArguments, on: stream)
    try stream.synchronize()
    try staging.download(deviceArguments.dQ, into: arguments.dQ)
    try staging.download(deviceArguments.dK, into: arguments.dK)
    try staging.download(deviceArguments.dV, into: arguments.dV)
  }
}
