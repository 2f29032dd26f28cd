#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Output files that appear all together or not at all.
///
/// Each file is written to a temporary file in its destination's directory and renamed into
/// place only after every file of the group was written and flushed, so a failure (a bad path, a
/// full disk) leaves no partial output and never truncates an existing file. Add every output,
/// then ``commit()`` once.
package struct AtomicFileGroup {
  struct Entry {
    var path: String
    var argument: String
    var header: [UInt8]
    /// Kept alive until the write; its storage follows the header.
    var tensor: HostTensor?
  }

  var entries: [Entry] = []

  /// The longest file name (one path component) the file systems we run on accept: NAME_MAX on
  /// Linux and macOS.
  static let nameMax = 255

  package init() {}

  /// Adds raw bytes (a JSON report, a table) to be written to `path`.
  package mutating func add(bytes: [UInt8], path: String, argument: String) {
    entries.append(Entry(path: path, argument: argument, header: bytes, tensor: nil))
  }

  /// Adds `tensor` to be written to `path` as a `.npy` file.
  ///
  /// - Throws: `FlashAttentionError.invalidArgument` for a dtype `.npy` cannot carry.
  package mutating func add(npy tensor: HostTensor, path: String, argument: String) throws(FlashAttentionError) {
    let header = try NPYFile.Header.encode(dtype: tensor.dtype, shape: tensor.shape, argument: argument)
    entries.append(Entry(path: path, argument: argument, header: header, tensor: tensor))
  }

  /// The destinations added so far, in order.
  package var paths: [String] { entries.map(\.path) }

  /// Writes every file, or none.
  ///
  /// - Throws: `OutputFileError` naming the output whose path is the same file as another's,
  ///   not a regular file, or cannot be written (cause `.path`), or whose data the storage did
  ///   not take (cause `.storage`: a full disk, a quota, an I/O error). No destination has
  ///   changed when it throws before the renames (a rename failing after an earlier one
  ///   succeeded is reported too).
  package func commit() throws(OutputFileError) {
    try Self.checkDistinct(outputs: entries.map { FileArgument(argument: $0.argument, path: $0.path) })
    for entry in entries {
      var status = stat()
      if stat(entry.path, &status) == 0, (status.st_mode & S_IFMT) != S_IFREG {
        throw OutputFileError(
          cause: .path, argument: entry.argument, path: entry.path, reason: "exists and is not a regular file")
      }
    }
    var temporaries: [String] = []
    do {
      for entry in entries {
        temporaries.append(try writeTemporary(entry))
      }
    } catch {
      for temporary in temporaries { unlink(temporary) }
      throw error
    }
    for (index, entry) in entries.enumerated() where rename(temporaries[index], entry.path) != 0 {
      let failure = OutputFileError.systemCall("cannot rename into place", argument: entry.argument, path: entry.path)
      for temporary in temporaries[index...] { unlink(temporary) }
      throw failure
    }
  }

  /// The temporary name for `path`: `.NAME.tmp-XXXXXX` beside it, with NAME shortened (at a
  /// character boundary) so that the whole name fits ``nameMax`` whatever the destination's
  /// length.
  package static func temporaryTemplate(for path: String) -> String {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[...$0]) } ?? ""
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let suffix = ".tmp-XXXXXX"
    let room = nameMax - 1 - suffix.utf8.count
    var kept = ""
    var bytes = 0
    for scalar in name.unicodeScalars {
      bytes += String(scalar).utf8.count
      if bytes > room { break }
      kept.unicodeScalars.append(scalar)
    }
    return directory + "." + kept + suffix
  }

  /// Writes one entry next to its destination and returns the temporary path.
  private func writeTemporary(_ entry: Entry) throws(OutputFileError) -> String {
    func failure(_ action: String) -> OutputFileError {
      OutputFileError.systemCall(action, argument: entry.argument, path: entry.path)
    }
    var template = Array(Self.temporaryTemplate(for: entry.path).utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else { throw failure("cannot create a file there") }
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
    // Once the file exists, every failure is the storage's: the path was good enough to create it.
    var error: OutputFileError?
    if fchmod(descriptor, mode) != 0 { error = failure("cannot set permissions") }
    if error == nil, !entry.header.withUnsafeBytes({ writeAll(descriptor, $0) }) { error = failure("cannot write") }
    if error == nil, let tensor = entry.tensor,
      !writeAll(descriptor, UnsafeRawBufferPointer(start: tensor.storage, count: tensor.byteCount))
    {
      error = failure("cannot write")
    }
    if error == nil, fsync(descriptor) != 0 { error = failure("cannot flush") }
    if close(descriptor) != 0, error == nil { error = failure("cannot close") }
    if var error {
      error.cause = .storage
      unlink(temporary)
      throw error
    }
    return temporary
  }

  /// Writes all of `buffer`, retrying short writes; false with `errno` set on failure.
  private func writeAll(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < buffer.count {
      let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        return false
      }
      offset += written
    }
    return true
  }
}
