#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FlashAttention
import FlashAttentionTestSupport
import Foundation
import Testing

/// The `flash-attention` executable end to end on temporary `.npy` files.
@Suite("flash-attention command line")
struct CommandLineTests {
  struct Outcome {
    var status: Int32
    var standardOutput: String
    var standardError: String
    /// Ended by a signal (`status` is then the signal's number).
    var signaled = false
    /// Killed by the test for running past its deadline.
    var timedOut = false
  }

  /// The executable SwiftPM built next to this test bundle (`FLASH_ATTENTION_CLI` overrides it).
  static var executable: String {
    if let path = ProcessInfo.processInfo.environment["FLASH_ATTENTION_CLI"] { return path }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    // The bundle may be a directory (`*.xctest/`), the runner a file inside it.
    while !directory.path.hasSuffix("/debug") && !directory.path.hasSuffix("/release") && directory.path != "/" {
      directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("flash-attention").path
  }

  /// Runs the tool in `directory`; past `timeout` seconds it is killed and the outcome says so.
  /// `shellPrefix` runs it through `/bin/sh -c "<prefix>; exec tool ..."` (a `ulimit`).
  static func run(
    _ arguments: [String], in directory: URL, backend: String? = nil, timeout: Double = 300,
    shellPrefix: String? = nil
  ) throws -> Outcome {
    let path = executable
    try #require(FileManager.default.isExecutableFile(atPath: path), "no flash-attention executable at \(path)")
    let process = Process()
    if let shellPrefix {
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c", shellPrefix + "; exec \"$0\" \"$@\"", path] + arguments
    } else {
      process.executableURL = URL(fileURLWithPath: path)
      process.arguments = arguments
    }
    process.currentDirectoryURL = directory
    var environment = ProcessInfo.processInfo.environment
    environment["FLASH_ATTENTION_BACKEND"] = backend
    // A crash ends at once with its signal: the runtime's backtracer would hold the pipes open.
    environment["SWIFT_BACKTRACE"] = "enable=no"
    process.environment = environment
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let deadline = DispatchWorkItem { kill(process.processIdentifier, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
    // Read before waiting, so a full pipe cannot block the child.
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    deadline.cancel()
    let signaled = process.terminationReason == .uncaughtSignal
    return Outcome(
      status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
      standardError: String(decoding: errData, as: UTF8.self), signaled: signaled,
      timedOut: signaled && process.terminationStatus == SIGKILL)
  }

  /// A temporary directory holding q, k, v and dout of `shape`.
  struct Workspace {
    let directory: URL
    let q: HostTensor
    let k: HostTensor
    let v: HostTensor
    let dOut: HostTensor

    init(_ shape: AttentionShape, dtype: DType = .float32, random: inout TestRandom) throws {
      directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      q = random.tensor(shape.qShape, dtype: dtype)
      k = random.tensor(shape.kShape, dtype: dtype)
      v = random.tensor(shape.vShape, dtype: dtype)
      dOut = random.tensor(shape.oShape, dtype: dtype)
      var inputs = AtomicFileGroup()
      for (name, tensor) in [("q", q), ("k", k), ("v", v), ("dout", dOut)] {
        try inputs.add(npy: tensor, path: path(name + ".npy"), argument: name)
      }
      try inputs.commit()
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func write(_ name: String, _ bytes: [UInt8]) throws {
      try Data(bytes).write(to: directory.appendingPathComponent(name))
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
  }

  static let shape = AttentionShape(batch: 2, seqlenQ: 19, seqlenK: 23, headsQ: 4, headsKV: 2, headDim: 16)
  static let inputs = ["--q", "q.npy", "--k", "k.npy", "--v", "v.npy"]

  @Test("run: forward and backward with every option, checked against the float64 reference")
  func forwardAndBackward() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    let outcome = try Self.run(
      ["run"] + Self.inputs + [
        "--out", "o.npy", "--lse", "lse.npy", "--causal", "--window-left", "6", "--softcap", "3", "--scale", "0.4",
        "--dout", "dout.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy", "--device", "cpu",
      ], in: workspace.directory)
    #expect(outcome.status == 0, "\(outcome.standardError)")
    let options = AttentionOptions(scale: 0.4, causal: true, window: SlidingWindow(left: 6, right: nil), softcap: 3)
    let (q, k, v) = (workspace.q.view, workspace.k.view, workspace.v.view)
    let reference = try ReferenceAttention.forward(q: q, k: k, v: v, options: options)
    let gradients = try ReferenceAttention.backward(q: q, k: k, v: v, dOut: workspace.dOut.view, options: options)
    for (file, expected, shape) in [
      ("o.npy", reference.out, Self.shape.oShape), ("lse.npy", reference.lse, Self.shape.lseShape),
      ("dq.npy", gradients.dQ, Self.shape.qShape), ("dk.npy", gradients.dK, Self.shape.kShape),
      ("dv.npy", gradients.dV, Self.shape.vShape),
    ] {
      let tensor = try NPYFile.read(path: workspace.path(file), argument: file)
      #expect(tensor.shape == shape && tensor.dtype == .float32, "\(file)")
      expectMatchesReference(file, actual: tensor.floats(), expected: expected, "seed \(random.seed)")
    }
  }

  @Test("run: float16 inputs give float16 outputs and a float32 LSE")
  func float16() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, dtype: .float16, random: &random)
    defer { workspace.remove() }
    let outcome = try Self.run(["run"] + Self.inputs + ["--out", "o.npy", "--lse", "l.npy"], in: workspace.directory)
    #expect(outcome.status == 0, "\(outcome.standardError)")
    let out = try NPYFile.read(path: workspace.path("o.npy"), argument: "o")
    let lse = try NPYFile.read(path: workspace.path("l.npy"), argument: "l")
    #expect(out.dtype == .float16 && lse.dtype == .float32)
    let (q, k, v) = (workspace.q.view, workspace.k.view, workspace.v.view)
    let reference = try ReferenceAttention.forward(q: q, k: k, v: v, options: AttentionOptions())
    let baseline = try ReferenceAttention.samePrecisionForward(q: q, k: k, v: v, options: AttentionOptions())
    expectMatchesReference(
      "out", actual: out.floats(), expected: reference.out, baseline: baseline.out, dtype: .float16,
      "seed \(random.seed)")
  }

  @Test("run: an empty sequence gives an empty output")
  func emptySequence() throws {
    var random = TestRandom()
    let workspace = try Workspace(
      AttentionShape(batch: 1, seqlenQ: 0, seqlenK: 5, headsQ: 2, headDim: 8), random: &random)
    defer { workspace.remove() }
    let outcome = try Self.run(["run"] + Self.inputs + ["--out", "o.npy", "--lse", "l.npy"], in: workspace.directory)
    #expect(outcome.status == 0, "\(outcome.standardError)")
    #expect(try NPYFile.read(path: workspace.path("o.npy"), argument: "o").shape == [1, 0, 2, 8])
    #expect(try NPYFile.read(path: workspace.path("l.npy"), argument: "l").shape == [1, 2, 0])
  }

  /// A bad input: extra files to create, then the arguments after the inputs.
  struct BadInput: Sendable, CustomTestStringConvertible {
    var label: String
    var files: [String: [Float]] = [:]
    var shapes: [String: [Int]] = [:]
    var raw: [String: [UInt8]] = [:]
    /// Symbolic links to create: name -> target.
    var links: [String: String] = [:]
    var arguments: [String]

    var testDescription: String { label }
  }

  static let badInputs: [BadInput] = {
    let outputs = ["--out", "o.npy", "--lse", "l.npy"]
    func file(_ label: String, _ name: String, _ shape: [Int], replacing flag: String) -> BadInput {
      var input = BadInput(label: label, arguments: [])
      input.shapes[name] = shape
      input.arguments = inputs.map { $0 == "\(flag).npy" ? name : $0 } + outputs
      return input
    }
    func raw(_ label: String, _ bytes: [UInt8]) -> BadInput {
      var input = BadInput(label: label, arguments: [])
      input.raw["bad.npy"] = bytes
      input.arguments = inputs.map { $0 == "q.npy" ? "bad.npy" : $0 } + outputs
      return input
    }
    func npy(_ dictionary: String, _ data: [UInt8]) -> [UInt8] {
      [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dictionary.utf8.count), 0] + Array(dictionary.utf8) + data
    }
    return [
      BadInput(label: "missing file", arguments: ["--q", "absent.npy", "--k", "k.npy", "--v", "v.npy"] + outputs),
      raw("integer dtype", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\n", [0, 0, 0, 0])),
      raw("big-endian", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", [0, 0, 0, 0])),
      raw("corrupt", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }\n", [0, 0])),
      raw("not npy", Array("just some text".utf8)),
      file("wrong rank", "q3.npy", [19, 4, 16], replacing: "q"),
      file("batch mismatch", "k3.npy", [3, 23, 2, 16], replacing: "k"),
      file("head_dim mismatch", "k17.npy", [2, 23, 2, 17], replacing: "k"),
      file("seqlen of K and V differ", "v22.npy", [2, 22, 2, 16], replacing: "v"),
      file("heads_q % heads_kv != 0", "k3h.npy", [2, 23, 3, 16], replacing: "k"),
      file("dtype mismatch", "v16.npy", [2, 23, 2, 16], replacing: "v"),
      BadInput(label: "scale nan", arguments: inputs + outputs + ["--scale", "nan"]),
      BadInput(label: "scale inf", arguments: inputs + outputs + ["--scale", "inf"]),
      BadInput(label: "scale 0", arguments: inputs + outputs + ["--scale", "0"]),
      BadInput(label: "scale negative", arguments: inputs + outputs + ["--scale=-0.5"]),
      BadInput(label: "negative softcap", arguments: inputs + outputs + ["--softcap=-1"]),
      BadInput(label: "window left < -1", arguments: inputs + outputs + ["--window-left=-3"]),
      BadInput(label: "window right with causal", arguments: inputs + outputs + ["--causal", "--window-right", "2"]),
      BadInput(label: "dout without dq", arguments: inputs + outputs + ["--dout", "dout.npy"]),
      BadInput(label: "output directory missing", arguments: inputs + ["--out", "o.npy", "--lse", "nowhere/l.npy"]),
      BadInput(label: "same output twice", arguments: inputs + ["--out", "o.npy", "--lse", "o.npy"]),
      BadInput(label: "same output as ./", arguments: inputs + ["--out", "o.npy", "--lse", "./o.npy"]),
      BadInput(
        label: "same output through a directory link", links: ["here": "."],
        arguments: inputs + ["--out", "o.npy", "--lse", "here/o.npy"]),
      BadInput(
        label: "same output through a file link", links: ["link.npy": "o.npy"],
        arguments: inputs + ["--out", "o.npy", "--lse", "link.npy"]),
      BadInput(label: "output is an input", arguments: inputs + ["--out", "./k.npy"]),
      BadInput(label: "gradient output is dout", arguments: inputs + outputs + [
        "--dout", "dout.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dout.npy",
      ]),
      raw("empty shape whose strides overflow", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776, 1099511627776, 8), }\n", [])),
      raw("shape entry past Int.max", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", [])),
      BadInput(label: "window left -2 as a separate word", arguments: inputs + outputs + ["--window-left", "-2"]),
      BadInput(label: "window bound past Int.max", arguments: inputs + outputs + ["--window-left", "9223372036854775808"]),
      BadInput(label: "window bound not a number", arguments: inputs + outputs + ["--window-right", "wide"]),
      BadInput(label: "scale -1 as a separate word", arguments: inputs + outputs + ["--scale", "-1"]),
      BadInput(label: "unknown device", arguments: inputs + outputs + ["--device", "tpu"]),
      BadInput(label: "unknown flag", arguments: inputs + outputs + ["--bogus"]),
      BadInput(label: "missing --v", arguments: ["--q", "q.npy", "--k", "k.npy"] + outputs),
    ]
  }()

  @Test("run: bad input exits 2 with one line on stderr, and leaves the outputs untouched", arguments: badInputs)
  func badInput(input: BadInput) throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    for (name, shape) in input.shapes {
      let dtype: DType = name == "v16.npy" ? .float16 : .float32
      try workspace.write(name, try NPYFile.encode(random.tensor(shape, dtype: dtype)))
    }
    for (name, bytes) in input.raw { try workspace.write(name, bytes) }
    for (name, target) in input.links { try #require(symlink(target, workspace.path(name)) == 0) }
    let previous = Array("an earlier result that must survive".utf8)
    try workspace.write("o.npy", previous)
    let before = try FileManager.default.contentsOfDirectory(atPath: workspace.directory.path).sorted()
    let inputsBefore = try ["q.npy", "k.npy", "v.npy", "dout.npy"].map { try Data(contentsOf: URL(fileURLWithPath: workspace.path($0))) }

    let outcome = try Self.run(["run"] + input.arguments, in: workspace.directory, timeout: 60)
    #expect(outcome.status == 2 && !outcome.signaled, "\(input.label): status \(outcome.status), stderr: \(outcome.standardError)")
    let lines = outcome.standardError.split(separator: "\n")
    #expect(lines.count == 1, "\(input.label): \(outcome.standardError)")
    #expect(outcome.standardError.hasPrefix("flash-attention: error: "), "\(input.label): \(outcome.standardError)")
    #expect(try Array(Data(contentsOf: workspace.directory.appendingPathComponent("o.npy"))) == previous)
    let inputsAfter = try ["q.npy", "k.npy", "v.npy", "dout.npy"].map { try Data(contentsOf: URL(fileURLWithPath: workspace.path($0))) }
    #expect(inputsAfter == inputsBefore, "\(input.label): an input changed")
    let after = try FileManager.default.contentsOfDirectory(atPath: workspace.directory.path).sorted()
    #expect(after == before, "\(input.label): files appeared or vanished")
  }

  @Test("verify: a CPU run passes, prints a table and writes JSON")
  func verify() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-verify-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outcome = try Self.run(
      ["verify", "--device", "cpu", "--filter", "causal-sq>sk", "--dtype", "float32", "bf16", "--json", "v.json"],
      in: directory)
    #expect(outcome.status == 0, "\(outcome.standardOutput)\(outcome.standardError)")
    #expect(outcome.standardOutput.contains("causal-sq>sk") && outcome.standardOutput.contains("PASS"))
    #expect(outcome.standardOutput.contains("2 of 2 passed"), "\(outcome.standardOutput)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("v.json")))
    let report = try #require(json as? [String: Any])
    #expect(report["passed"] as? Bool == true)
    #expect((report["results"] as? [Any])?.count == 2)
  }

  @Test("verify: a filter that matches nothing is bad input")
  func verifyNoMatch() throws {
    let outcome = try Self.run(["verify", "--filter", "no-such-case"], in: FileManager.default.temporaryDirectory)
    #expect(outcome.status == 2)
  }

  @Test("an invalid FLASH_ATTENTION_BACKEND is bad input; a valid one is shown by info")
  func backendVariable() throws {
    let directory = FileManager.default.temporaryDirectory
    let bad = try Self.run(["demo", "--seqlen", "16"], in: directory, backend: "tpu")
    #expect(bad.status == 2 && bad.standardError.contains("FLASH_ATTENTION_BACKEND"), "\(bad.standardError)")
    let info = try Self.run(["info"], in: directory, backend: "cpu")
    #expect(info.status == 0 && info.standardOutput.contains("FLASH_ATTENTION_BACKEND=cpu"), "\(info.standardOutput)")
  }

  @Test("info reports version, backends and CPU features")
  func info() throws {
    let outcome = try Self.run(["info"], in: FileManager.default.temporaryDirectory)
    #expect(outcome.status == 0, "\(outcome.standardError)")
    for text in ["flash-attention ", "backends:", "cpu:", "cuda:", "logical cores"] {
      #expect(outcome.standardOutput.contains(text), "\(text) missing in \(outcome.standardOutput)")
    }
  }

  @Test("demo (the default command) runs, times and checks a small problem")
  func demo() throws {
    let outcome = try Self.run(
      ["--seqlen", "200", "--heads", "4", "--kv-heads", "2", "--check-rows", "50", "--device", "cpu"],
      in: FileManager.default.temporaryDirectory)
    #expect(outcome.status == 0, "\(outcome.standardOutput)\(outcome.standardError)")
    #expect(outcome.standardOutput.contains("forward") && outcome.standardOutput.contains("PASS"), "\(outcome.standardOutput)")
  }
}
