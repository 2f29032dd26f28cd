#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FlashAttention
import FlashAttentionTestSupport
import Foundation
import Testing

/// The file-system edges of the tool's I/O: inputs that are not regular files, outputs that are
/// the same file under two names, names at the length limit, and the cause a failure reports.
@Suite("Files: FIFOs, aliases of one file, long names, storage failures")
struct OutputFileTests {
  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("file-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test("a FIFO given as input is refused at once, not waited on")
  func fifoInput() async throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let fifo = directory.appendingPathComponent("k.npy").path
    try #require(mkfifo(fifo, 0o600) == 0)
    let reader = Task.detached { () -> FlashAttentionError? in
      do throws(FlashAttentionError) {
        _ = try NPYFile.read(path: fifo, argument: "k")
        return nil
      } catch {
        return error
      }
    }
    // A reader blocked in open(2) is released by a writer's open, so the test ends either way.
    try await Task.sleep(for: .seconds(3))
    let writer = open(fifo, O_WRONLY | O_NONBLOCK)
    #expect(writer < 0, "the read was still waiting for a writer after 3 s")
    if writer >= 0 { close(writer) }
    let error = await reader.value
    guard case let .invalidArgument(name, _, reason) = error else {
      Issue.record("expected invalidArgument, got \(String(describing: error))")
      return
    }
    #expect(name == "k" && reason.contains("not a regular file"), "\(reason)")
  }

  @Test("two outputs that are one file, or an output that is an input, are refused")
  func aliases() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let base = directory.path
    try Data([1]).write(to: directory.appendingPathComponent("input.npy"))
    try Data([2]).write(to: directory.appendingPathComponent("existing.npy"))
    try #require(symlink(".", base + "/here") == 0)
    try #require(symlink("existing.npy", base + "/link.npy") == 0)
    try #require(link(base + "/existing.npy", base + "/hard.npy") == 0)
    let input = FileArgument(argument: "q", path: base + "/input.npy")
    let cases: [(String, [FileArgument], [FileArgument])] = [
      ("./ spelling", [.init(argument: "out", path: base + "/x.npy"), .init(argument: "lse", path: base + "/./x.npy")], []),
      ("a directory link", [.init(argument: "out", path: base + "/x.npy"), .init(argument: "lse", path: base + "/here/x.npy")], []),
      ("a file link", [.init(argument: "out", path: base + "/existing.npy"), .init(argument: "lse", path: base + "/link.npy")], []),
      ("a hard link", [.init(argument: "out", path: base + "/existing.npy"), .init(argument: "lse", path: base + "/hard.npy")], []),
      ("the input", [.init(argument: "out", path: base + "/here/input.npy")], [input]),
    ]
    for (label, outputs, inputs) in cases {
      #expect(throws: OutputFileError.self, "\(label)") {
        try AtomicFileGroup.checkDistinct(outputs: outputs, inputs: inputs)
      }
    }
    // Distinct names in one directory, and an input read by two arguments, are fine.
    try AtomicFileGroup.checkDistinct(
      outputs: [.init(argument: "out", path: base + "/x.npy"), .init(argument: "lse", path: base + "/y.npy")],
      inputs: [input, .init(argument: "k", path: base + "/input.npy")])
  }

  @Test("a group given one file under two names writes nothing")
  func aliasedGroupWritesNothing() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    try #require(symlink(".", directory.path + "/here") == 0)
    var group = AtomicFileGroup()
    try group.add(npy: HostTensor([1], shape: [1]), path: directory.path + "/x.npy", argument: "out")
    try group.add(npy: HostTensor([2], shape: [1]), path: directory.path + "/here/x.npy", argument: "lse")
    #expect(throws: OutputFileError.self) { try group.commit() }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["here"])
  }

  @Test("output names up to NAME_MAX (255 bytes) are written", arguments: [244, 250, 255])
  func longNames(length: Int) throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    // Two-byte characters too, so that shortening the temporary name must respect them.
    let stem = String(repeating: "é", count: (length - 4) / 2) + String(repeating: "a", count: (length - 4) % 2)
    let name = stem + ".npy"
    #expect(name.utf8.count == length)
    var group = AtomicFileGroup()
    try group.add(npy: HostTensor([1, 2], shape: [2]), path: directory.appendingPathComponent(name).path, argument: "out")
    try group.commit()
    #expect(try NPYFile.read(path: directory.appendingPathComponent(name).path, argument: "out").floats() == [1, 2])
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [name])
  }

  @Test("the temporary name fits NAME_MAX and stays valid UTF-8")
  func temporaryName() {
    let name = String(repeating: "é", count: 127) + "a"  // 255 bytes
    let template = AtomicFileGroup.temporaryTemplate(for: "some/dir/" + name)
    #expect(template.hasPrefix("some/dir/."))
    let component = template.split(separator: "/").last.map(String.init) ?? ""
    #expect(component.utf8.count <= 255 && component.hasSuffix(".tmp-XXXXXX"), "\(component.utf8.count)")
    #expect(AtomicFileGroup.temporaryTemplate(for: "o.npy") == ".o.npy.tmp-XXXXXX")
  }

  @Test("a failure's cause: the storage (exit 1) or the path (exit 2)")
  func causes() {
    for code in [ENOSPC, EDQUOT, EFBIG, EIO] {
      #expect(OutputFileError.systemCall("cannot write", argument: "out", path: "o", code: code).cause == .storage)
    }
    for code in [ENOENT, ENOTDIR, EACCES, EROFS, ENAMETOOLONG, EISDIR] {
      #expect(OutputFileError.systemCall("cannot create", argument: "out", path: "o", code: code).cause == .path)
    }
  }
}
