/// Arithmetic on sizes that come from callers (shapes, strides, element and byte counts): every
/// product and sum reports overflow as `nil` instead of trapping, so a hostile shape becomes a
/// typed error at the edge and the code behind it can compute offsets without checks.
package enum CheckedSize {
  /// The most bytes one tensor may span: half the address space, so that a base pointer plus
  /// any offset inside the tensor, and a few such offsets added, still fit in an `Int`.
  package static let maximumBytes = Int.max / 2

  /// `a · b`, or nil on overflow.
  @inlinable package static func product(_ a: Int, _ b: Int) -> Int? {
    let (value, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : value
  }

  /// `a + b`, or nil on overflow.
  @inlinable package static func sum(_ a: Int, _ b: Int) -> Int? {
    let (value, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : value
  }

  /// The number of elements of `shape`: 0 when a size is 0 (whatever the others), nil when a
  /// size is negative or the product overflows.
  package static func elementCount(_ shape: [Int]) -> Int? {
    if shape.contains(where: { $0 < 0 }) { return nil }
    if shape.contains(0) { return 0 }
    return denseSpan(shape)
  }

  /// The product of the sizes with zeros counted as ones: the largest row-major stride of
  /// `shape` times its outer size, which is what a row-major layout must be able to express
  /// even when the tensor is empty. Nil when a size is negative or the product overflows.
  package static func denseSpan(_ shape: [Int]) -> Int? {
    var running = 1
    for size in shape {
      guard size >= 0, let next = product(running, max(size, 1)) else { return nil }
      running = next
    }
    return running
  }

  /// The offset one past the farthest element a view can reach, `1 + Σ (size - 1) · stride`
  /// over the sizes that are not 0 (an empty axis contributes no offset, but the other axes
  /// still index partial rows in code that walks them): nil on overflow or a negative entry.
  package static func extent(shape: [Int], strides: [Int]) -> Int? {
    guard shape.count == strides.count else { return nil }
    var last = 0
    for axis in 0..<shape.count {
      guard shape[axis] >= 0, strides[axis] >= 0 else { return nil }
      guard let step = product(max(shape[axis], 1) - 1, strides[axis]), let next = sum(last, step) else {
        return nil
      }
      last = next
    }
    return sum(last, 1)
  }

  /// `elements · byteSize` when it is at most ``maximumBytes``, else nil.
  package static func byteCount(elements: Int, dtype: DType) -> Int? {
    guard let bytes = product(elements, dtype.byteSize), bytes <= maximumBytes else { return nil }
    return bytes
  }
}
