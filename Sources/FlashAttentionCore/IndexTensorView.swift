/// A non-owning view of int32 index data - cumulative sequence lengths, used lengths, cache
/// lengths, cache batch indices, page tables - in host or CUDA memory, with strides in elements.
///
/// Host index data is read and checked before any kernel runs. Device index data is read by the
/// kernels themselves and trusted, as FlashAttention does: checking it would cost a copy and a
/// synchronization per call.
public struct IndexTensorView: @unchecked Sendable {
  public var baseAddress: UnsafeMutableRawPointer
  public var shape: [Int]
  /// Strides in elements, one per dimension.
  public var strides: [Int]
  public var location: MemoryLocation
  /// Keeps owned memory alive for as long as the view exists (see `TensorView.owner`).
  public var owner: AnyObject?

  public init(
    baseAddress: UnsafeMutableRawPointer, shape: [Int], strides: [Int]? = nil, location: MemoryLocation = .host
  ) {
    self.baseAddress = baseAddress
    self.shape = shape
    self.strides = strides ?? TensorView.contiguousStrides(for: shape)
    self.location = location
  }

  /// An owning host copy of `values` (a vector), for callers without memory of their own.
  public init(_ values: [Int32]) {
    let storage = IndexStorage(values)
    self.init(baseAddress: storage.pointer, shape: [values.count])
    owner = storage
  }

  /// An owning host copy of a row-major matrix `rows × columns` (a page table).
  public init(_ values: [Int32], rows: Int, columns: Int) {
    let storage = IndexStorage(values)
    self.init(baseAddress: storage.pointer, shape: [rows, columns])
    owner = storage
  }

  public var elementCount: Int { shape.reduce(1, *) }

  /// Element `index` of a host vector.
  @inlinable public subscript(index: Int) -> Int32 {
    baseAddress.assumingMemoryBound(to: Int32.self)[index * strides[0]]
  }

  /// Element `(row, column)` of a host matrix.
  @inlinable public subscript(row: Int, column: Int) -> Int32 {
    baseAddress.assumingMemoryBound(to: Int32.self)[row * strides[0] + column * strides[1]]
  }

  /// The values of a host vector as `Int`s.
  public var hostValues: [Int] { (0..<(shape.first ?? 0)).map { Int(self[$0]) } }
}

/// The memory behind `IndexTensorView`'s owning initializers.
final class IndexStorage: @unchecked Sendable {
  let pointer: UnsafeMutableRawPointer

  init(_ values: [Int32]) {
    pointer = UnsafeMutableRawPointer.allocate(byteCount: max(values.count * 4, 4), alignment: 64)
    values.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: $0.count) }
  }

  deinit { pointer.deallocate() }
}
