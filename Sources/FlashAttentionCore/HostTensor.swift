/// An owning, 64-byte aligned host array with a dtype and a contiguous shape: the convenience
/// for callers that do not already own memory. `view` lends it to the attention calls.
public final class HostTensor: @unchecked Sendable {
  public let dtype: DType
  public let shape: [Int]
  public let elementCount: Int
  public let storage: UnsafeMutableRawPointer

  /// Uninitialized storage is filled with NaN so that an element nobody wrote is visible.
  public init(shape: [Int], dtype: DType) {
    self.dtype = dtype
    self.shape = shape
    self.elementCount = shape.reduce(1, *)
    self.storage = UnsafeMutableRawPointer.allocate(
      byteCount: max(elementCount * dtype.byteSize, 1), alignment: 64)
    fill(.nan)
  }

  /// Converts `values` (row-major) to `dtype`.
  public convenience init(_ values: [Float], shape: [Int], dtype: DType = .float32) {
    precondition(values.count == shape.reduce(1, *), "HostTensor: \(values.count) values for shape \(shape)")
    self.init(shape: shape, dtype: dtype)
    let view = self.view
    for index in 0..<values.count { view.storeFloat(values[index], atElementOffset: index) }
  }

  deinit { storage.deallocate() }

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
}
