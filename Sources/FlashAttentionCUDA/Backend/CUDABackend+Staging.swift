import FlashAttentionCore

/// Host views run through device memory from the scratch pool: inputs are packed contiguous and
/// uploaded, outputs are computed there and copied back into the caller's (possibly strided)
/// views. `release` returns the memory in the stream's order.
struct DeviceStaging {
  let device: CUDADevice
  let stream: CUDAStream
  let pool: DeviceScratchPool
  private(set) var addresses: [UInt64] = []

  init(device: CUDADevice, stream: CUDAStream) throws(FlashAttentionError) {
    self.device = device
    self.stream = stream
    self.pool = try DeviceScratchPool.shared(for: device)
  }

  /// A contiguous device copy of a host view (queued; the host memory is read before return).
  mutating func upload(_ view: TensorView) throws(FlashAttentionError) -> TensorView {
    let bytes = view.elementCount * view.dtype.byteSize
    let copy = try output(like: view)
    if bytes > 0 {
      let api = device.api
      if view.isContiguous {
        try api.check(
          api.cuMemcpyHtoDAsync(copy.deviceAddress, view.baseAddress, bytes, stream.handle), "cuMemcpyHtoDAsync_v2")
        try stream.synchronize()
      } else {
        let packed = try HostTensor(shape: view.shape, dtype: view.dtype, name: "staging copy")
        HostCopy.copy(from: view, to: packed.view)
        try api.check(
          api.cuMemcpyHtoDAsync(copy.deviceAddress, packed.storage, bytes, stream.handle), "cuMemcpyHtoDAsync_v2")
        try stream.synchronize()
      }
    }
    return copy
  }

  /// A contiguous device view shaped like a host view (contents undefined).
  mutating func output(like view: TensorView) throws(FlashAttentionError) -> TensorView {
    let address = try pool.allocate(view.elementCount * view.dtype.byteSize, on: stream)
    addresses.append(address)
    guard let staged = TensorView(devicePointer: address, device: device.ordinal, dtype: view.dtype, shape: view.shape)
    else { throw .cuda(message: "the scratch pool returned a null address") }
    return staged
  }

  /// Copies a device result back into the caller's host view (queued after the kernels; waits).
  func download(_ source: TensorView, into destination: TensorView) throws(FlashAttentionError) {
    let bytes = source.elementCount * source.dtype.byteSize
    if bytes == 0 { return }
    let api = device.api
    try device.makeCurrent()
    if destination.isContiguous {
      try api.check(
        api.cuMemcpyDtoHAsync(destination.baseAddress, source.deviceAddress, bytes, stream.handle),
        "cuMemcpyDtoHAsync_v2")
      try stream.synchronize()
    } else {
      let packed = try HostTensor(shape: source.shape, dtype: source.dtype, name: "staging copy")
      try api.check(
        api.cuMemcpyDtoHAsync(packed.storage, source.deviceAddress, bytes, stream.handle), "cuMemcpyDtoHAsync_v2")
      try stream.synchronize()
      HostCopy.copy(from: packed.view, to: destination)
    }
  }

  /// Returns every staged buffer to the pool after the work queued so far.
  func release() throws(FlashAttentionError) {
    for address in addresses { try pool.free(address, on: stream) }
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
    var staging = try DeviceStaging(device: device, stream: stream)
    do throws(FlashAttentionError) {
      let descale = arguments.descale
      let deviceDescale = FP8Descale(
        q: try descale.q.map { view throws(FlashAttentionError) in try staging.upload(view) },
        k: try descale.k.map { view throws(FlashAttentionError) in try staging.upload(view) },
        v: try descale.v.map { view throws(FlashAttentionError) in try staging.upload(view) })
      let deviceArguments = try ForwardArguments(
        q: staging.upload(arguments.q), k: staging.upload(arguments.k), v: staging.upload(arguments.v),
        out: staging.output(like: arguments.out), lse: staging.output(like: arguments.lse),
        options: arguments.options, descale: deviceDescale)
      try enqueueForward(deviceArguments, on: stream)
      try staging.download(deviceArguments.out, into: arguments.out)
      try staging.download(deviceArguments.lse, into: arguments.lse)
    } catch {
      try? staging.release()
      throw error
    }
    try staging.release()
  }

  func backwardStaged(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    var staging = try DeviceStaging(device: device, stream: stream)
    do throws(FlashAttentionError) {
      let deviceArguments = try BackwardArguments(
        q: staging.upload(arguments.q), k: staging.upload(arguments.k), v: staging.upload(arguments.v),
        out: staging.upload(arguments.out), lse: staging.upload(arguments.lse),
        dOut: staging.upload(arguments.dOut), dQ: staging.output(like: arguments.dQ),
        dK: staging.output(like: arguments.dK), dV: staging.output(like: arguments.dV),
        options: arguments.options)
      try enqueueBackward(deviceArguments, on: stream)
      try staging.download(deviceArguments.dQ, into: arguments.dQ)
      try staging.download(deviceArguments.dK, into: arguments.dK)
      try staging.download(deviceArguments.dV, into: arguments.dV)
    } catch {
      try? staging.release()
      throw error
    }
    try staging.release()
  }
}
