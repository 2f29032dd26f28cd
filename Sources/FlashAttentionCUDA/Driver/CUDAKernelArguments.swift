/// Kernel parameters packed by value in declaration order, each at its natural alignment.
///
/// `cuLaunchKernel` takes an array of pointers, one per parameter; `CUDAFunction.launch` builds
/// it inside one `withUnsafe...` scope over this storage so no pointer outlives its value.
public struct CUDAKernelArguments: Sendable {
  var bytes: [UInt8] = []
  var offsets: [Int] = []

  public init() {}

  /// Appends one trivially-copyable value (`Int32`, `UInt64` device pointers, `Float`, or a
  /// C-layout struct such as a 128-byte TMA descriptor).
  public mutating func append<T: BitwiseCopyable>(_ value: T) {
    let alignment = MemoryLayout<T>.alignment
    let start = (bytes.count + alignment - 1) / alignment * alignment
    bytes.append(contentsOf: [UInt8](repeating: 0, count: start - bytes.count))
    withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    offsets.append(start)
  }

  /// Appends raw bytes as one parameter aligned to `alignment` (a `__grid_constant__` struct).
  public mutating func appendBytes(_ raw: UnsafeRawBufferPointer, alignment: Int) {
    let start = (bytes.count + alignment - 1) / alignment * alignment
    bytes.append(contentsOf: [UInt8](repeating: 0, count: start - bytes.count))
    bytes.append(contentsOf: raw)
    offsets.append(start)
  }

  public var count: Int { offsets.count }
}
