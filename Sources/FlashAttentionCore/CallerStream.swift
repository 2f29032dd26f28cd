/// A CUDA stream that belongs to the caller (a `CUstream` / `cudaStream_t` from PyTorch, CuPy or
/// the driver API). A call given one queues its work there and returns without waiting, like a
/// kernel launch; the caller orders it with its other work and synchronizes when it needs the
/// results.
public struct CallerStream: @unchecked Sendable, Hashable {
  /// The raw `CUstream` handle.
  public let handle: UnsafeMutableRawPointer

  public init(_ handle: UnsafeMutableRawPointer) {
    self.handle = handle
  }
}
