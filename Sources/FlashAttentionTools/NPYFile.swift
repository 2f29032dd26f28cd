#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reads and writes NumPy `.npy` files: little-endian float32 or float16, C order — the exchange
/// format of the command-line tool. (Hosts are little-endian: x86-64 and arm64.)
///
/// Reading is strict: a wrong magic, an unknown header key, an integer, float64 or big-endian
/// dtype, Fortran order, or a data section that is shorter or longer than the shape says is a
/// typed error naming the argument (`q`, `k`, ...) and the file, never a crash. Writing goes
/// through ``AtomicFileGroup``, so a failed run never creates or truncates an output file.
///
/// ```swift
/// let q = try NPYFile.read(path: "q.npy", argument: "q")      // HostTensor, float32 or float16
/// var outputs = AtomicFileGroup()
/// try outputs.add(npy: out, path: "o.npy", argument: "out")
/// try outputs.commit()                                      // all files appear, or none
/// ```
package enum NPYFile {
  /// The dtypes `.npy` can carry for this library (NumPy has no bfloat16).
  package static let supportedDTypes: [DType] = [.float32, .float16]

  /// Reads a whole `.npy` file into a new host tensor of the file's dtype and shape.
  ///
  /// - Parameters:
  ///   - path: the file to read.
  ///   - argument: the name errors use for this input (`"q"`, `"dout"`).
  /// - Throws: `FlashAttentionError.invalidArgument` naming `argument` when the file is missing,
  ///   not a regular file, unreadable or not a supported `.npy`; `.outOfMemory` when its data
  ///   does not fit in the memory left.
  package static func read(path: String, argument: String) throws(FlashAttentionError) -> HostTensor {
    let file = try ReadableFile(path: path, argument: argument)
    defer { file.close() }
    func fail(_ reason: String) -> FlashAttentionError {
      .invalidArgument(name: argument, value: quoted(path), reason: reason)
    }
    // The header's length sits in its first 12 bytes; the data is then read straight into the
    // tensor, so a large file is never held twice.
    let extent = try Header.extent(try file.bytes(at: 0, count: min(file.size, 12)), fail: fail)
    let header = try Header.parse(
      try file.bytes(at: 0, count: min(file.size, extent.upperBound)), argument: argument, path: path)
    let byteCount = try header.dataByteCount(
      available: file.size - header.dataOffset, argument: argument, path: path)
    let tensor = try HostTensor(shape: header.shape, dtype: header.dtype, name: argument)
    try file.read(into: tensor.storage, at: header.dataOffset, count: byteCount)
    return tensor
  }

  /// Parses the bytes of a `.npy` file.
  ///
  /// - Parameters:
  ///   - bytes: the complete file.
  ///   - argument: the name errors use for this input.
  ///   - path: the file name errors show (only for messages).
  package static func decode(
    _ bytes: [UInt8], argument: String, path: String = "<memory>"
  ) throws(FlashAttentionError) -> HostTensor {
    let header = try Header.parse(bytes, argument: argument, path: path)
    let byteCount = try header.dataByteCount(
      available: bytes.count - header.dataOffset, argument: argument, path: path)
    let tensor = try HostTensor(shape: header.shape, dtype: header.dtype, name: argument)
    bytes.withUnsafeBytes { raw in
      guard byteCount > 0, let base = raw.baseAddress else { return }
      tensor.storage.copyMemory(from: base + header.dataOffset, byteCount: byteCount)
    }
    return tensor
  }

  /// The bytes of `tensor` as a version 1.0 `.npy` file (little-endian, C order).
  ///
  /// - Throws: `FlashAttentionError.invalidArgument` for bfloat16, which `.npy` cannot carry.
  package static func encode(_ tensor: HostTensor, argument: String = "tensor") throws(FlashAttentionError) -> [UInt8] {
    var bytes = try Header.encode(dtype: tensor.dtype, shape: tensor.shape, argument: argument)
    bytes.append(contentsOf: UnsafeRawBufferPointer(start: tensor.storage, count: tensor.byteCount))
    return bytes
  }

  static func quoted(_ path: String) -> String { "\"\(path)\"" }
}
