/// Where a tensor's memory lives.
public enum MemoryLocation: Sendable, Hashable, CustomStringConvertible {
  case host
  /// A CUDA device pointer on the given device ordinal.
  case cuda(device: Int)

  public var description: String {
    switch self {
    case .host: "host"
    case let .cuda(device): "cuda:\(device)"
    }
  }
}

/// A non-owning view of caller-owned memory with a dtype, a shape and strides in elements.
///
/// The memory may be host memory or a CUDA device pointer (from this library or from another
/// framework); the view never copies. The last dimension must have unit stride.
public struct TensorView: @unchecked Sendable {
  public var baseAddress: UnsafeMutableRawPointer
  public var dtype: DType
  public var shape: [Int]
  /// Strides in elements (not bytes), one per dimension.
  public var strides: [Int]
  public var location: MemoryLocation
  /// The object that owns the memory when an owner lent the view (`HostTensor.view`, a CUDA
  /// buffer's `view`), else nil. Holding it keeps the memory alive for as long as any copy of
  /// the view exists: Swift may end an owner's lifetime at its last use, which can come before a
  /// call that reads through the view (a use-after-free seen in optimized builds only).
  public var owner: AnyObject?

  public init(
    baseAddress: UnsafeMutableRawPointer, dtype: DType, shape: [Int], strides: [Int]? = nil,
    location: MemoryLocation = .host
  ) {
    self.baseAddress = baseAddress
    self.dtype = dtype
    self.shape = shape
    self.strides = strides ?? TensorView.contiguousStrides(for: shape)
    self.location = location
  }

  /// A view of memory that `owner` keeps alive (see `owner`).
  public init(
    baseAddress: UnsafeMutableRawPointer, dtype: DType, shape: [Int], strides: [Int]? = nil,
    location: MemoryLocation = .host, owner: AnyObject
  ) {
    self.init(baseAddress: baseAddress, dtype: dtype, shape: shape, strides: strides, location: location)
    self.owner = owner
  }

  /// A view of a CUDA device pointer (`CUdeviceptr`) owned elsewhere.
  public init?(
    devicePointer: UInt64, device: Int = 0, dtype: DType, shape: [Int], strides: [Int]? = nil
  ) {
    guard let pointer = UnsafeMutableRawPointer(bitPattern: UInt(devicePointer)) else { return nil }
    self.init(
      baseAddress: pointer, dtype: dtype, shape: shape, strides: strides, location: .cuda(device: device))
  }

  /// Row-major strides (an empty axis counts as 1). A stride past `Int.max` saturates there:
  /// such a shape spans more memory than exists, and validation refuses it.
  public static func contiguousStrides(for shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
      strides[axis] = running
      running = CheckedSize.product(running, max(shape[axis], 1)) ?? Int.max
    }
    return strides
  }

  /// The number of elements: 0 when a size is 0; `Int.max` for a shape whose count overflows
  /// or has a negative size (validation refuses those).
  public var elementCount: Int { CheckedSize.elementCount(shape) ?? Int.max }

  public var isContiguous: Bool { strides == TensorView.contiguousStrides(for: shape) }

  /// Device pointer value for CUDA views.
  public var deviceAddress: UInt64 { UInt64(UInt(bitPattern: baseAddress)) }

  /// Element offset of a multi-index.
  @inlinable public func offset(_ index: [Int]) -> Int {
    var total = 0
    for axis in 0..<index.count { total += index[axis] * strides[axis] }
    return total
  }

  /// Reads one element of a host tensor as Float (any storage dtype).
  @inlinable public func loadFloat(atElementOffset offset: Int) -> Float {
    switch dtype {
    case .float32:
      return baseAddress.assumingMemoryBound(to: Float.self)[offset]
    case .float16:
      return Float(baseAddress.assumingMemoryBound(to: Float16.self)[offset])
    case .bfloat16:
      return BFloat16Conversion.float(fromBits: baseAddress.assumingMemoryBound(to: UInt16.self)[offset])
    case .float8E4M3:
      return Float8E4M3Conversion.float(fromBits: baseAddress.assumingMemoryBound(to: UInt8.self)[offset])
    }
  }

  /// Writes one element of a host tensor, rounding to the storage dtype.
  @inlinable public func storeFloat(_ value: Float, atElementOffset offset: Int) {
    switch dtype {
    case .float32:
      baseAddress.assumingMemoryBound(to: Float.self)[offset] = value
    case .float16:
      baseAddress.assumingMemoryBound(to: Float16.self)[offset] = Float16(value)
    case .bfloat16:
      baseAddress.assumingMemoryBound(to: UInt16.self)[offset] = BFloat16Conversion.bits(from: value)
    case .float8E4M3:
      baseAddress.assumingMemoryBound(to: UInt8.self)[offset] = Float8E4M3Conversion.bits(from: value)
    }
  }
}
