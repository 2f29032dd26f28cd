#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a path names on disk, so that two spellings of one file (`x.npy`, `./x.npy`,
/// `link-to-dir/x.npy`, a symbolic or hard link) are recognized as the same file.
///
/// A path has up to three identities: the directory entry it names (its directory's device and
/// inode, and its last component: what a rename replaces), the file it resolves to (following
/// links: what a read sees), and the link itself when it is one. Two paths are the same file
/// for our purposes when any of their identities agree.
enum FileIdentity: Hashable {
  case entry(device: UInt64, inode: UInt64, name: String)
  case file(device: UInt64, inode: UInt64)

  static func identities(of path: String) -> Set<FileIdentity> {
    var result: Set<FileIdentity> = []
    let slash = path.lastIndex(of: "/")
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    var status = stat()
    if !["", ".", ".."].contains(name), stat(directory, &status) == 0 {
      result.insert(.entry(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), name: name))
    }
    if stat(path, &status) == 0 {
      result.insert(.file(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
    }
    if lstat(path, &status) == 0 {
      result.insert(.file(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
    }
    return result
  }
}

/// A file given on a command line: the argument it was given for (`"out"`, `"q"`) and the path.
package struct FileArgument: Sendable {
  package var argument: String
  package var path: String

  package init(argument: String, path: String) {
    self.argument = argument
    self.path = path
  }
}

extension AtomicFileGroup {
  /// Refuses two outputs that are the same file, and an output that is one of the inputs: the
  /// renames would leave one output in place of the other, or replace an input, and say nothing.
  /// Call it before the work, so a run is refused before it computes anything.
  ///
  /// - Throws: `OutputFileError` with cause `.path`, naming the later of the two arguments.
  package static func checkDistinct(outputs: [FileArgument], inputs: [FileArgument] = []) throws(OutputFileError) {
    var claimed: [FileIdentity: (argument: String, path: String, isInput: Bool)] = [:]
    for input in inputs {
      for identity in FileIdentity.identities(of: input.path) {
        claimed[identity] = claimed[identity] ?? (input.argument, input.path, true)
      }
    }
    for output in outputs {
      let identities = FileIdentity.identities(of: output.path)
      if let other = identities.lazy.compactMap({ claimed[$0] }).first {
        let reason =
          other.isInput
          ? "is the input \(other.argument) (\(NPYFile.quoted(other.path))); write the result elsewhere"
          : "names the same file as \(other.argument) (\(NPYFile.quoted(other.path)))"
        throw OutputFileError(cause: .path, argument: output.argument, path: output.path, reason: reason)
      }
      for identity in identities { claimed[identity] = (output.argument, output.path, false) }
    }
  }
}
