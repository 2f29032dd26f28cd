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
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. The
    // check below is on the descriptor itself (no window between a check and the open), and on
    // a regular file O_NONBLOCK changes nothing.
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
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
