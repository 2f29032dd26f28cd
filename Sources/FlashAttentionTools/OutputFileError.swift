#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why an output file could not be written: the path given for it, or the storage beneath it.
///
/// The two call for different remedies, so the command-line tool exits differently: a path that
/// names no writable place (a missing directory, no permission, a directory, the same file as
/// another argument) is bad input (exit 2); a full disk, a quota, a file-size limit or an I/O
/// error is a failure underneath a valid request (exit 1).
package struct OutputFileError: Error, Sendable, Equatable, CustomStringConvertible {
  package enum Cause: Sendable, Equatable {
    /// The path itself cannot serve as this output.
    case path
    /// The file system failed to store the data.
    case storage
  }

  package var cause: Cause
  /// The argument the path was given for (`"out"`, `"--json"`).
  package var argument: String
  package var path: String
  package var reason: String

  package init(cause: Cause, argument: String, path: String, reason: String) {
    self.cause = cause
    self.argument = argument
    self.path = path
    self.reason = reason
  }

  /// A failed system call, `errno` still set: storage when the error is about space or the
  /// device (`ENOSPC`, `EDQUOT`, `EFBIG`, `EIO`, out of descriptors or kernel memory), the path
  /// otherwise (`ENOENT`, `EACCES`, `EROFS`, `ENAMETOOLONG`, `EISDIR`, ...).
  package static func systemCall(_ action: String, argument: String, path: String, code: Int32 = errno) -> OutputFileError {
    let storageCodes: Set<Int32> = [ENOSPC, EDQUOT, EFBIG, EIO, ENOMEM, EMFILE, ENFILE]
    return OutputFileError(
      cause: storageCodes.contains(code) ? .storage : .path, argument: argument, path: path,
      reason: "\(action): \(String(cString: strerror(code)))")
  }

  package var description: String {
    switch cause {
    case .path: "invalid argument \(argument) = \(NPYFile.quoted(path)): \(reason)"
    case .storage: "writing \(argument) = \(NPYFile.quoted(path)) failed: \(reason)"
    }
  }
}
