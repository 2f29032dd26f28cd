#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An owning, 64-byte aligned host array with a dtype and a contiguous shape: the convenience
/// for callers that do not already own memory. `view` lends it to the attention calls.
public final class HostTensor: @unchecked Sendable {
  public let dtype: DType
  public let shape: [Int]
  public let elementCount: Int
  public let storage: UnsafeMutableRawPointer

  /// Allocates a tensor whose shape may come from a user (a file header, a flag, the sizes of
  /// other tensors): the shape and the memory are checked first. Uninitialized storage is
  /// filled with NaN so that an element nobody wrote is visible.
  ///
  /// - Parameters:
  ///   - shape: the sizes, each >= 0.
  ///   - dtype: the storage type.
  ///   - name: what the tensor is, in errors (`"out"`, `"q"`).
  /// - Throws: `.invalidArgument` naming `name.shape` for a negative size or a shape whose
  ///   row-major layout cannot be expressed in memory; `.outOfMemory` when the bytes are more
  ///   than this process can still get (checked before allocating).
  public init(shape: [Int], dtype: DType, name: String) throws(FlashAttentionError) {
    let byteCount = try HostTensor.checkedByteCount(shape: shape, dtype: dtype, name: name)
    self.dtype = dtype
    self.shape = shape
    self.elementCount = byteCount / dtype.byteSize
    self.storage = try HostMemory.allocate(byteCount: byteCount, alignment: 64, context: name)
    fill(.nan)
  }

  /// A tensor of sizes the caller knows to be valid and small (tests, fixed scratch), filled
  /// with NaN. It stops the process on a shape ``init(shape:dtype:name:)`` would refuse: pass
  /// sizes that come from users to that one.
  public convenience init(shape: [Int], dtype: DType) {
    do {
      try self.init(shape: shape, dtype: dtype, name: "HostTensor")
    } catch {
      fatalError("HostTensor(shape: \(shape), dtype: \(dtype)): \(error)")
    }
  }

  /// Converts `values` (row-major) to `dtype`, for values and a shape that may come from a user.
  /// - Throws: `.invalidArgument` naming `name` when `values.count` is not the shape's element
  ///   count, and what ``init(shape:dtype:name:)`` throws.
  public convenience init(_ values: [Float], shape: [Int], dtype: DType = .float32, name: String)
    throws(FlashAttentionError)
  {
    let elements = try HostTensor.checkedByteCount(shape: shape, dtype: dtype, name: name) / dtype.byteSize
    if elements != values.count {
      throw .invalidArgument(
        name: name, value: "\(values.count) values", reason: "shape \(shape) holds \(elements) elements")
    }
    try self.init(shape: shape, dtype: dtype, name: name)
    let view = self.view
    for index in 0..<values.count { view.storeFloat(values[index], atElementOffset: index) }
  }

  /// Converts `values` (row-major) to `dtype`, for sizes the caller knows to match (tests,
  /// examples); stops the process on a mismatch: pass user data to ``init(_:shape:dtype:name:)``.
  public convenience init(_ values: [Float], shape: [Int], dtype: DType = .float32) {
    precondition(
      CheckedSize.elementCount(shape) == values.count, "HostTensor: \(values.count) values for shape \(shape)")
    self.init(shape: shape, dtype: dtype)
    let view = self.view
    for index in 0..<values.count { view.storeFloat(values[index], atElementOffset: index) }
  }

  deinit { free(storage) }

  public var view: TensorView { TensorView(baseAddress: storage, dtype: dtype, shape: shape, owner: self) }

  public var byteCount: Int { elementCount * dtype.byteSize }

  public func fill(_ value: Float) {
    let view = self.view
    for index in 0..<elementCount { view.storeFloat(value, atElementOffset: index) }
  }

  /// All elements widened to Float, row-major.
  public func floats() -> [Float] {
    let view = self.view
    return (0..<elementCount).map { view.loadFloat(atElementOffset: $0) }
  }

  /// The bytes of `shape`, refusing a negative size and a shape whose row-major strides (which
  /// count empty axes as 1) or bytes exceed ``CheckedSize/maximumBytes``.
  private static func checkedByteCount(shape: [Int], dtype: DType, name: String) throws(FlashAttentionError) -> Int {
    if let axis = shape.firstIndex(where: { $0 < 0 }) {
      throw .invalidArgument(name: "\(name).shape[\(axis)]", value: "\(shape[axis])", reason: "must be >= 0")
    }
    guard let span = CheckedSize.denseSpan(shape), CheckedSize.byteCount(elements: span, dtype: dtype) != nil,
      let elements = CheckedSize.elementCount(shape), let bytes = CheckedSize.byteCount(elements: elements, dtype: dtype)
    else {
      throw .invalidArgument(
        name: "\(name).shape", value: "\(shape)",
        reason: "too large: its sizes (empty ones counted as 1) multiply to more than 2^62 bytes of \(dtype)")
    }
    return bytes
  }
}
