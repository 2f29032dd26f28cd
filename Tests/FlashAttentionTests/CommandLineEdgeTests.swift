#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import FlashAttention
import FlashAttentionTestSupport
import Foundation
import Testing

/// The command line at the edges of issue 16: the documented `-1` bound, bounds near `Int.max`,
/// outputs no memory holds, empty problems with 2^40 heads, FIFOs, long names, a full disk.
@Suite("flash-attention command line: edges")
struct CommandLineEdgeTests {
  typealias Workspace = CommandLineTests.Workspace
  static let inputs = CommandLineTests.inputs

  /// Runs `run` in a workspace of `shape` and checks O (and the gradients when `backward`)
  /// against the float64 reference under `options`.
  func expectRun(
    _ flags: [String], shape: AttentionShape, options: AttentionOptions, backward: Bool = false
  ) throws {
    var random = TestRandom()
    let workspace = try Workspace(shape, random: &random)
    defer { workspace.remove() }
    let gradients = backward ? ["--dout", "dout.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy"] : []
    let outcome = try CommandLineTests.run(
      ["run"] + Self.inputs + ["--out", "o.npy", "--device", "cpu"] + gradients + flags, in: workspace.directory,
      timeout: 120)
    #expect(outcome.status == 0 && !outcome.signaled, "\(flags): \(outcome.standardError)")
    guard outcome.status == 0 else { return }
    let (q, k, v) = (workspace.q.view, workspace.k.view, workspace.v.view)
    var expected = [("o.npy", try ReferenceAttention.forward(q: q, k: k, v: v, options: options).out)]
    if backward {
      let reference = try ReferenceAttention.backward(q: q, k: k, v: v, dOut: workspace.dOut.view, options: options)
      expected += [("dq.npy", reference.dQ), ("dk.npy", reference.dK), ("dv.npy", reference.dV)]
    }
    for (file, values) in expected {
      let actual = try NPYFile.read(path: workspace.path(file), argument: file).floats()
      expectMatchesReference(file, actual: actual, expected: values, "\(flags), seed \(random.seed)")
    }
  }

  static let shape = AttentionShape(batch: 1, seqlenQ: 23, seqlenK: 7, headsQ: 2, headDim: 16)

  @Test("-1 window bounds parse as separate words and mean unbounded, also with --causal")
  func minusOneBounds() throws {
    try expectRun(["--window-left", "-1"], shape: Self.shape, options: AttentionOptions())
    try expectRun(["--window-left", "-1", "--window-right", "-1"], shape: Self.shape, options: AttentionOptions())
    try expectRun(["--causal", "--window-right=-1"], shape: Self.shape, options: AttentionOptions(causal: true))
    try expectRun(
      ["--causal", "--window-right", "-1", "--window-left", "4", "--deterministic"], shape: Self.shape,
      options: AttentionOptions(causal: true, window: SlidingWindow(left: 4, right: nil), deterministic: true),
      backward: true)
  }

  @Test("window bounds of Int.max and Int.max - 1 are unbounded, forward and backward (seqlen_q > seqlen_k + 1)")
  func hugeBounds() throws {
    for bound in [Int.max, Int.max - 1] {
      try expectRun(
        ["--window-left=\(bound)", "--window-right", "\(bound)"], shape: Self.shape, options: AttentionOptions(),
        backward: true)
      try expectRun(["--causal", "--window-left", "\(bound)"], shape: Self.shape, options: AttentionOptions(causal: true), backward: true)
    }
  }

  @Test("7 MB of valid inputs whose output no memory holds: exit 1, one line, no output")
  func hugeOutput() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    // O would be [1, 10^5, 1, 10^7] float32: 4 TB.
    for (name, shape) in [("q4.npy", [1, 100_000, 1, 8]), ("k4.npy", [1, 1, 1, 8]), ("v4.npy", [1, 1, 1, 10_000_000])] {
      try workspace.write(name, try NPYFile.encode(HostTensor(shape: shape, dtype: .float32)))
    }
    let outcome = try CommandLineTests.run(
      ["run", "--q", "q4.npy", "--k", "k4.npy", "--v", "v4.npy", "--out", "o4.npy", "--device", "cpu"],
      in: workspace.directory, timeout: 120)
    #expect(outcome.status == 1 && !outcome.signaled, "status \(outcome.status): \(outcome.standardError)")
    #expect(outcome.standardError.split(separator: "\n").count == 1, "\(outcome.standardError)")
    #expect(outcome.standardError.contains("out of memory"), "\(outcome.standardError)")
    #expect(!FileManager.default.fileExists(atPath: workspace.path("o4.npy")))
  }

  @Test("an empty q and dout with 2^40 heads: the backward returns at once")
  func emptyManyHeads() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    try workspace.write("q0.npy", try NPYFile.encode(HostTensor(shape: [1, 0, 1 << 40, 16], dtype: .float32)))
    try workspace.write("k0.npy", try NPYFile.encode(random.tensor([1, 3, 1, 16])))
    try workspace.write("v0.npy", try NPYFile.encode(random.tensor([1, 3, 1, 16])))
    let outcome = try CommandLineTests.run(
      [
        "run", "--q", "q0.npy", "--k", "k0.npy", "--v", "v0.npy", "--out", "o0.npy", "--lse", "l0.npy",
        "--dout", "q0.npy", "--dq", "dq0.npy", "--dk", "dk0.npy", "--dv", "dv0.npy", "--device", "cpu",
      ], in: workspace.directory, timeout: 60)
    #expect(outcome.status == 0 && !outcome.timedOut, "status \(outcome.status): \(outcome.standardError)")
    guard outcome.status == 0 else { return }
    #expect(try NPYFile.read(path: workspace.path("dk0.npy"), argument: "dk").floats() == [Float](repeating: 0, count: 48))
    #expect(try NPYFile.read(path: workspace.path("l0.npy"), argument: "lse").shape == [1, 1 << 40, 0])
  }

  @Test("a FIFO given as --k is refused at once")
  func fifoInput() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    try #require(mkfifo(workspace.path("fifo.npy"), 0o600) == 0)
    let outcome = try CommandLineTests.run(
      ["run", "--q", "q.npy", "--k", "fifo.npy", "--v", "v.npy", "--out", "o.npy"], in: workspace.directory, timeout: 30)
    #expect(outcome.status == 2 && !outcome.timedOut, "status \(outcome.status): \(outcome.standardError)")
    #expect(outcome.standardError.contains("not a regular file"), "\(outcome.standardError)")
  }

  @Test("an output name of 250 bytes is written")
  func longOutputName() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    let name = String(repeating: "o", count: 246) + ".npy"
    let outcome = try CommandLineTests.run(["run"] + Self.inputs + ["--out", name], in: workspace.directory)
    #expect(outcome.status == 0, "\(outcome.standardError)")
    #expect(FileManager.default.fileExists(atPath: workspace.path(name)))
  }

  @Test("a write past the file-size limit (like a full disk) exits 1, leaving no partial output")
  func storageFailure() throws {
    var random = TestRandom()
    let workspace = try Workspace(Self.shape, random: &random)
    defer { workspace.remove() }
    let previous = Array("an earlier result that must survive".utf8)
    try workspace.write("o.npy", previous)
    let before = try FileManager.default.contentsOfDirectory(atPath: workspace.directory.path).sorted()
    // The header fits in one 512-byte block, the data (23 · 2 · 16 floats) does not.
    let outcome = try CommandLineTests.run(
      ["run"] + Self.inputs + ["--out", "o.npy", "--lse", "l.npy"], in: workspace.directory, shellPrefix: "ulimit -f 1")
    #expect(outcome.status == 1 && !outcome.signaled, "status \(outcome.status): \(outcome.standardError)")
    #expect(outcome.standardError.split(separator: "\n").count == 1, "\(outcome.standardError)")
    #expect(try Array(Data(contentsOf: URL(fileURLWithPath: workspace.path("o.npy")))) == previous)
    #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.directory.path).sorted() == before)
  }

  @Test("demo: --kv-heads defaults to a divisor of --heads; a bad one is one line, exit 2")
  func demoHeads() throws {
    let directory = FileManager.default.temporaryDirectory
    for heads in ["1", "3"] {
      let outcome = try CommandLineTests.run(
        ["demo", "--heads", heads, "--seqlen", "40", "--head-dim", "8", "--check-rows", "8", "--repeats", "1", "--device", "cpu"],
        in: directory)
      #expect(outcome.status == 0, "--heads \(heads): \(outcome.standardError)")
    }
    let bad = try CommandLineTests.run(["demo", "--heads", "3", "--kv-heads", "2", "--seqlen", "8"], in: directory)
    #expect(bad.status == 2 && bad.standardError.split(separator: "\n").count == 1, "\(bad.standardError)")
  }
}
