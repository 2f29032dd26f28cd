#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An open input file read with `pread` (the umbrella stays Foundation-free); errors name the
/// argument the file was given for.
struct ReadableFile {
  let descriptor: Int32
  let size: Int
  let argument: String
  let path: String

  init(path: String, argument: String) throws(FlashAttentionError) {
    func fail(_ reason: String) -> FlashAttentionError {
      .invalidArgument(name: argument, value: NPYFile.quoted(path), reason: reason)
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw fail("cannot open: \(SystemError.current)") }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      let reason = "cannot stat: \(SystemError.current)"
      _ = closeDescriptor(descriptor)
      throw fail(reason)
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
      _ = closeDescriptor(descriptor)
      throw fail("not a regular file")
    }
    self.descriptor = descriptor
    self.size = Int(status.st_size)
    self.argument = argument
    self.path = path
  }

  func close() { _ = closeDescriptor(descriptor) }

  /// `count` bytes from `offset`.
  func bytes(at offset: Int, count: Int) throws(FlashAttentionError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    var failure: FlashAttentionError?
    buffer.withUnsafeMutableBytes { raw in
      do throws(FlashAttentionError) {
        if let base = raw.baseAddress { try read(into: base, at: offset, count: count) }
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
    return buffer
  }

  /// Reads exactly `count` bytes from `offset` into `destination`.
  func read(into destination: UnsafeMutableRawPointer, at offset: Int, count: Int) throws(FlashAttentionError) {
    var done = 0
    while done < count {
      let got = pread(descriptor, destination + done, count - done, off_t(offset + done))
      if got < 0 {
        if errno == EINTR { continue }
        throw .invalidArgument(
          name: argument, value: NPYFile.quoted(path), reason: "cannot read: \(SystemError.current)")
      }
      if got == 0 {
        throw .invalidArgument(name: argument, value: NPYFile.quoted(path), reason: "the file shrank while it was read")
      }
      done += got
    }
  }
}

/// `close(2)`, named apart from ``ReadableFile/close()``, which shadows it.
private func closeDescriptor(_ descriptor: Int32) -> Int32 {
  close(descriptor)
}

/// `strerror(errno)` as text.
enum SystemError {
  static var current: String { String(cString: strerror(errno)) }
}

/// Output files that appear all together or not at all.
///
/// Each file is written to a temporary file in its destination's directory and renamed into
/// place only after every file of the group was written and flushed, so a failure (a bad path, a
/// full disk) leaves no partial output and never truncates an existing file. Add every output,
/// then ``commit()`` once.
public struct AtomicFileGroup {
  struct Entry {
    var path: String
    var argument: String
    var header: [UInt8]
    /// Kept alive until the write; its storage follows the header.
    var tensor: HostTensor?
  }

  var entries: [Entry] = []

  public init() {}

  /// Adds raw bytes (a JSON report, a table) to be written to `path`.
  public mutating func add(bytes: [UInt8], path: String, argument: String) {
    entries.append(Entry(path: path, argument: argument, header: bytes, tensor: nil))
  }

  /// Adds `tensor` to be written to `path` as a `.npy` file.
  ///
  /// - Throws: `FlashAttentionError.invalidArgument` for a dtype `.npy` cannot carry.
  public mutating func add(npy tensor: HostTensor, path: String, argument: String) throws(FlashAttentionError) {
    let header = try NPYFile.Header.encode(dtype: tensor.dtype, shape: tensor.shape, argument: argument)
    entries.append(Entry(path: path, argument: argument, header: header, tensor: tensor))
  }

  /// The destinations added so far, in order.
  public var paths: [String] { entries.map(\.path) }

  /// Writes every file, or none.
  ///
  /// - Throws: `FlashAttentionError.invalidArgument` naming the output whose path is repeated,
  ///   not a regular file, or cannot be written; no destination has changed when it throws
  ///   before the renames (a rename failing after an earlier one succeeded is reported too).
  public func commit() throws(FlashAttentionError) {
    func fail(_ entry: Entry, _ reason: String) -> FlashAttentionError {
      .invalidArgument(name: entry.argument, value: NPYFile.quoted(entry.path), reason: reason)
    }
    var seen: [String: String] = [:]
    for entry in entries {
      if let other = seen[entry.path] {
        throw fail(entry, "the same file is also given for \(other)")
      }
      seen[entry.path] = entry.argument
      var status = stat()
      if stat(entry.path, &status) == 0, (status.st_mode & S_IFMT) != S_IFREG {
        throw fail(entry, "exists and is not a regular file")
      }
    }
    var temporaries: [String] = []
    do {
      for entry in entries {
        temporaries.append(try writeTemporary(entry, fail: fail))
      }
    } catch {
      for temporary in temporaries { unlink(temporary) }
      throw error
    }
    for (index, entry) in entries.enumerated() where rename(temporaries[index], entry.path) != 0 {
      let reason = "cannot rename into place: \(SystemError.current)"
      for temporary in temporaries[index...] { unlink(temporary) }
      throw fail(entry, reason)
    }
  }

  /// Writes one entry next to its destination and returns the temporary path.
  private func writeTemporary(
    _ entry: Entry, fail: (Entry, String) -> FlashAttentionError
  ) throws(FlashAttentionError) -> String {
    let slash = entry.path.lastIndex(of: "/")
    let directory = slash.map { String(entry.path[...$0]) } ?? ""
    let name = slash.map { String(entry.path[entry.path.index(after: $0)...]) } ?? entry.path
    var template = Array((directory + "." + name + ".tmp-XXXXXX").utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else { throw fail(entry, "cannot create a file there: \(SystemError.current)") }
    let temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var status = stat()
    let mode: mode_t
    if stat(entry.path, &status) == 0 {
      mode = status.st_mode & 0o7777
    } else {
      let mask = umask(0)
      umask(mask)
      mode = 0o666 & ~mask
    }
    var failure: String?
    if fchmod(descriptor, mode) != 0 { failure = "cannot set permissions: \(SystemError.current)" }
    if failure == nil { failure = entry.header.withUnsafeBytes { writeAll(descriptor, $0) } }
    if failure == nil, let tensor = entry.tensor {
      failure = writeAll(descriptor, UnsafeRawBufferPointer(start: tensor.storage, count: tensor.byteCount))
    }
    if failure == nil, fsync(descriptor) != 0 { failure = "cannot flush: \(SystemError.current)" }
    if close(descriptor) != 0, failure == nil { failure = "cannot close: \(SystemError.current)" }
    if let failure {
      unlink(temporary)
      throw fail(entry, failure)
    }
    return temporary
  }

  /// Writes all of `buffer`, retrying short writes; returns the failure, if any.
  private func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer) -> String? {
    var offset = 0
    while offset < buffer.count {
      let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        return "cannot write: \(SystemError.current)"
      }
      offset += written
    }
    return nil
  }
}
