import FlashAttention
import FlashAttentionTestSupport
import Foundation
import Testing

@Suite("NPYFile: strict .npy reading, writing, all-or-nothing outputs")
struct NPYFileTests {
  /// A fresh temporary directory, removed by the caller.
  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("npy-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// A .npy file as NumPy writes it: version 1.0, header padded with spaces to 64 bytes.
  static func npy(descr: String, fortran: String = "False", shape: String, data: [UInt8], version: UInt8 = 1) -> [UInt8] {
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }"
    let prefix = version == 1 ? 10 : 12
    header += String(repeating: " ", count: (64 - (prefix + header.utf8.count + 1) % 64) % 64) + "\n"
    let length = header.utf8.count
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
    bytes += version == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)] : [UInt8(length & 0xFF), UInt8(length >> 8), 0, 0]
    return bytes + Array(header.utf8) + data
  }

  static func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
  }

  @Test("reads NumPy's own layout (v1 and v2 headers, any key order)")
  func readsNumPyLayout() throws {
    let values: [Float] = [1, -2.5, 3, 0.125, 5, 6]
    let v1 = try NPYFile.decode(Self.npy(descr: "<f4", shape: "(2, 3)", data: Self.floatBytes(values)), argument: "q")
    #expect(v1.shape == [2, 3] && v1.dtype == .float32 && v1.floats() == values)
    let v2 = try NPYFile.decode(Self.npy(descr: "<f4", shape: "(6,)", data: Self.floatBytes(values), version: 2), argument: "q")
    #expect(v2.shape == [6] && v2.floats() == values)
    let dictionary = Array("{\"shape\": (1,), \"fortran_order\": False, \"descr\": \"<f4\"}    \n".utf8)
    let reordered: [UInt8] =
      [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dictionary.count), 0] + dictionary + Self.floatBytes([7])
    #expect(try NPYFile.decode(reordered, argument: "q").floats() == [7])
  }

  @Test("round trip of float32 and float16, shapes of every rank including empty ones", arguments: [
    [2, 3, 4, 5], [7], [], [1, 0, 3, 8], [3, 1],
  ])
  func roundTrip(shape: [Int]) throws {
    var random = TestRandom()
    for dtype in NPYFile.supportedDTypes {
      let tensor = random.tensor(shape, dtype: dtype)
      let bytes = try NPYFile.encode(tensor)
      #expect(bytes.count % 64 == tensor.byteCount % 64, "the data starts 64-byte aligned")
      let decoded = try NPYFile.decode(bytes, argument: "x")
      #expect(decoded.shape == shape && decoded.dtype == dtype)
      #expect(decoded.floats() == tensor.floats())
    }
  }

  @Test("the header NumPy expects")
  func headerText() throws {
    let bytes = try NPYFile.encode(HostTensor([1, 2, 3], shape: [3], dtype: .float16))
    // 10 bytes of magic, version and length, then the dictionary padded to 128 bytes in all.
    let header = String(decoding: bytes[10..<128], as: UTF8.self)
    #expect(header.hasPrefix("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"))
    #expect(header.hasSuffix(" \n"))
    #expect(bytes.count == 128 + 6)
  }

  /// Each corrupt or unsupported file and a phrase its error must contain.
  static let badFiles: [(String, [UInt8], String)] = [
    ("empty file", [], "magic"),
    ("wrong magic", Array("PK\u{3}\u{4} not numpy at all".utf8), "magic"),
    ("version 9", [0x93] + Array("NUMPY".utf8) + [9, 0, 0, 0], "version"),
    ("header longer than file", [0x93] + Array("NUMPY".utf8) + [1, 0, 200, 0] + Array("{}".utf8), "truncated"),
    ("int32", npy(descr: "<i4", shape: "(2,)", data: [0, 0, 0, 0, 0, 0, 0, 0]), "integer"),
    ("bool", npy(descr: "|b1", shape: "(2,)", data: [0, 1]), "integer"),
    ("float64", npy(descr: "<f8", shape: "(1,)", data: [UInt8](repeating: 0, count: 8)), "float64"),
    ("big-endian", npy(descr: ">f4", shape: "(1,)", data: [0, 0, 0, 0]), "big-endian"),
    ("complex", npy(descr: "<c8", shape: "(1,)", data: [UInt8](repeating: 0, count: 8)), "unsupported dtype"),
    ("fortran order", npy(descr: "<f4", fortran: "True", shape: "(2, 2)", data: floatBytes([1, 2, 3, 4])), "Fortran"),
    ("truncated data", npy(descr: "<f4", shape: "(2, 2)", data: floatBytes([1, 2, 3])), "truncated"),
    ("trailing bytes", npy(descr: "<f4", shape: "(1,)", data: floatBytes([1, 2])), "corrupt"),
    ("negative dimension", npy(descr: "<f4", shape: "(-1,)", data: []), "malformed"),
    ("unknown key", npy(descr: "<f4', 'extra': 'x", shape: "(1,)", data: floatBytes([1])), "malformed"),
    ("garbage header", [0x93] + Array("NUMPY".utf8) + [1, 0, 6, 0] + Array("hello\n".utf8), "malformed"),
    ("huge shape", npy(descr: "<f4", shape: "(4611686018427387904, 4)", data: []), "too large"),
    // No data, but no row-major strides either (2^40 · 2^40 · 8 overflows).
    ("empty, huge shape", npy(descr: "<f4", shape: "(0, 1099511627776, 1099511627776, 8)", data: []), "too large"),
  ]

  @Test("corrupt and unsupported files are typed errors naming the argument", arguments: 0..<badFiles.count)
  func badFile(index: Int) throws {
    let (label, bytes, phrase) = Self.badFiles[index]
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("k.npy").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    // The same verdict from memory and from the file (which is read header first, then data).
    for source in ["memory", "file"] {
      do {
        if source == "memory" {
          _ = try NPYFile.decode(bytes, argument: "k", path: path)
        } else {
          _ = try NPYFile.read(path: path, argument: "k")
        }
        Issue.record("\(label) from \(source): accepted")
      } catch {
        guard case let .invalidArgument(name, value, reason) = error else {
          Issue.record("\(label) from \(source): \(error)")
          continue
        }
        #expect(name == "k" && value == "\"\(path)\"", "\(label) from \(source): \(error)")
        #expect(reason.contains(phrase), "\(label) from \(source): \(error)")
      }
    }
  }

  @Test("a missing file or a directory is an error naming the argument")
  func missingFile() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    for path in [directory.appendingPathComponent("absent.npy").path, directory.path] {
      #expect {
        _ = try NPYFile.read(path: path, argument: "v")
      } throws: { error in
        guard case let .invalidArgument(name, _, _) = error as? FlashAttentionError else { return false }
        return name == "v"
      }
    }
  }

  @Test("AtomicFileGroup writes all files, readable back")
  func groupWrites() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let tensor = HostTensor([1, 2, 3, 4], shape: [2, 2])
    var group = AtomicFileGroup()
    try group.add(npy: tensor, path: directory.appendingPathComponent("a.npy").path, argument: "out")
    group.add(bytes: Array("{}\n".utf8), path: directory.appendingPathComponent("r.json").path, argument: "--json")
    try group.commit()
    #expect(try NPYFile.read(path: directory.appendingPathComponent("a.npy").path, argument: "a").floats() == [1, 2, 3, 4])
    #expect(try String(contentsOf: directory.appendingPathComponent("r.json"), encoding: .utf8) == "{}\n")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty)
  }

  @Test("AtomicFileGroup: one unwritable output means no file is created or changed")
  func groupAllOrNothing() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let existing = directory.appendingPathComponent("existing.npy")
    let original = Array("previous contents".utf8)
    try Data(original).write(to: existing)
    let fresh = directory.appendingPathComponent("fresh.npy")
    var group = AtomicFileGroup()
    try group.add(npy: HostTensor([1], shape: [1]), path: existing.path, argument: "out")
    try group.add(npy: HostTensor([2], shape: [1]), path: fresh.path, argument: "lse")
    try group.add(npy: HostTensor([3], shape: [1]), path: directory.appendingPathComponent("no/such/dir/x.npy").path, argument: "dq")
    #expect {
      try group.commit()
    } throws: { error in
      guard let error = error as? OutputFileError else { return false }
      return error.argument == "dq" && error.cause == .path
    }
    #expect(try Array(Data(contentsOf: existing)) == original)
    #expect(!FileManager.default.fileExists(atPath: fresh.path))
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["existing.npy"])
  }

  @Test("AtomicFileGroup refuses the same path twice and a directory as destination")
  func groupRefusals() throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("o.npy").path
    var twice = AtomicFileGroup()
    try twice.add(npy: HostTensor([1], shape: [1]), path: path, argument: "out")
    try twice.add(npy: HostTensor([1], shape: [1]), path: path, argument: "dq")
    #expect(throws: OutputFileError.self) { try twice.commit() }
    var intoDirectory = AtomicFileGroup()
    try intoDirectory.add(npy: HostTensor([1], shape: [1]), path: directory.path, argument: "out")
    #expect(throws: OutputFileError.self) { try intoDirectory.commit() }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
  }

  @Test("bfloat16 cannot be written as .npy")
  func bfloat16() {
    var group = AtomicFileGroup()
    #expect(throws: FlashAttentionError.self) {
      try group.add(npy: HostTensor([1], shape: [1], dtype: .bfloat16), path: "/tmp/never.npy", argument: "out")
    }
  }
}
