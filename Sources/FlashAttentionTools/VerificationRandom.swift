#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Seeded random inputs (SplitMix64, Box–Muller normals) for verification, the tests and demos.
package struct VerificationRandom: RandomNumberGenerator, Sendable {
  var state: UInt64

  package init(seed: UInt64) { state = seed }

  /// A host tensor of standard normal values.
  package mutating func tensor(_ shape: [Int], dtype: DType) -> HostTensor {
    let tensor = HostTensor(shape: shape, dtype: dtype)
    fill(tensor.view)
    return tensor
  }

  /// A host tensor of standard normal values whose shape may come from a user.
  ///
  /// - Throws: as `HostTensor(shape:dtype:name:)`: a shape too large, or not enough memory.
  package mutating func tensor(_ shape: [Int], dtype: DType, name: String) throws(FlashAttentionError) -> HostTensor {
    let tensor = try HostTensor(shape: shape, dtype: dtype, name: name)
    fill(tensor.view)
    return tensor
  }

  /// Q, K, V in the problem's layout and a contiguous dO, all standard normal values.
  ///
  /// - Throws: `invalidArgument` for a packed-QKV problem whose Q, K and V shapes differ.
  package mutating func inputs(
    for problem: AttentionProblem, dtype: DType
  ) throws(FlashAttentionError) -> AttentionInputs {
    let inputs = try layOut(problem, dtype: dtype)
    if problem.outliers {
      inputs.q.addOutlierChannels()
      inputs.k.addOutlierChannels()
    }
    return inputs
  }

  private mutating func layOut(
    _ problem: AttentionProblem, dtype: DType
  ) throws(FlashAttentionError) -> AttentionInputs {
    let shape = problem.shape
    switch problem.layout {
    case .contiguous:
      let q = tensor(shape.qShape, dtype: dtype), k = tensor(shape.kShape, dtype: dtype)
      let v = tensor(shape.vShape, dtype: dtype)
      return AttentionInputs(q: q.view, k: k.view, v: v.view, dOut: tensor(shape.oShape, dtype: dtype).view)
    case .strided:
      let q = padded(shape.qShape, dtype: dtype), k = padded(shape.kShape, dtype: dtype)
      let v = padded(shape.vShape, dtype: dtype)
      return AttentionInputs(q: q, k: k, v: v, dOut: tensor(shape.oShape, dtype: dtype).view)
    case .packedQKV:
      guard shape.seqlenQ == shape.seqlenK, shape.headsQ == shape.headsKV, shape.headDim == shape.headDimV else {
        throw .invalidArgument(
          name: "layout", value: problem.layout.rawValue,
          reason: "needs seqlen_q = seqlen_k, heads_q = heads_kv and head_dim = head_dim_v, not \(shape)")
      }
      let rowWidth = shape.headsQ * shape.headDim
      let packed = tensor([shape.batch, shape.seqlenQ, 3, shape.headsQ, shape.headDim], dtype: dtype)
      let strides = [shape.seqlenQ * 3 * rowWidth, 3 * rowWidth, shape.headDim, 1]
      func slice(_ index: Int) -> TensorView {
        TensorView(
          baseAddress: packed.storage + index * rowWidth * dtype.byteSize, dtype: dtype, shape: shape.qShape,
          strides: strides, owner: packed)
      }
      return AttentionInputs(q: slice(0), k: slice(1), v: slice(2), dOut: tensor(shape.oShape, dtype: dtype).view)
    }
  }

  /// SplitMix64.
  package mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A standard normal value (Box–Muller).
  package mutating func normal() -> Float {
    let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
    let u2 = Double.random(in: 0..<1, using: &self)
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }

  private mutating func fill(_ view: TensorView) {
    if view.strides == TensorView.contiguousStrides(for: view.shape) {
      for offset in 0..<view.elementCount { view.storeFloat(normal(), atElementOffset: offset) }
    } else {
      for offset in view.elementOffsets() { view.storeFloat(normal(), atElementOffset: offset) }
    }
  }

  /// A view of standard normal values whose rows are 8 elements longer in memory (16 for 1-byte
  /// types, so rows stay 16-byte aligned for TMA); the padding stays NaN (a new `HostTensor` is
  /// NaN-filled).
  private mutating func padded(_ shape: [Int], dtype: DType) -> TensorView {
    var storageShape = shape
    storageShape[storageShape.count - 1] += dtype.byteSize == 1 ? 16 : 8
    let storage = HostTensor(shape: storageShape, dtype: dtype)
    let view = TensorView(
      baseAddress: storage.storage, dtype: dtype, shape: shape,
      strides: TensorView.contiguousStrides(for: storageShape), owner: storage)
    fill(view)
    return view
  }
}

/// The inputs of one problem; each view keeps the memory it points into alive.
package struct AttentionInputs: Sendable {
  package var q: TensorView
  package var k: TensorView
  package var v: TensorView
  /// The gradient of the output, contiguous.
  package var dOut: TensorView
}

extension TensorView {
  /// The element offsets of every element, in row-major order of the shape (any rank).
  package func elementOffsets() -> [Int] {
    var offsets = [0]
    for axis in 0..<shape.count {
      offsets = offsets.flatMap { base in (0..<shape[axis]).map { base + $0 * strides[axis] } }
    }
    return offsets
  }

  /// Every element widened to Float, in row-major order of the shape (any strides).
  package func gatherFloats() -> [Float] {
    elementOffsets().map { loadFloat(atElementOffset: $0) }
  }
}
