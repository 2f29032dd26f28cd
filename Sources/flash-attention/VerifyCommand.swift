import ArgumentParser
import FlashAttention
import FlashAttentionCUDA
import FlashAttentionTools
import Foundation

/// `flash-attention verify`: the built-in problem matrix against the float64 reference.
struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check forward and backward on a built-in problem matrix against a float64 reference.",
    discussion: """
      Every problem runs on fresh random inputs with NaN-poisoned outputs. float32 passes at a \
      relative L2 error <= 1e-4; float16 and bfloat16 pass when their error is at most 2x that \
      of standard attention computed in the same precision (plus 1e-6); fp8 (e4m3 inputs with \
      descales, bfloat16 output) when its error is at most 4x that of standard attention with P \
      in e4m3. LSE always needs 1e-4. \
      NaN never passes; rows that see no key must give exactly O = 0, LSE = -inf and dQ = 0, \
      keys no row sees exactly dK = dV = 0. Exits with 1 when any problem fails.
      """)

  @Option(help: "Backend: cpu, cuda, cuda:N or auto.")
  var device: BackendChoice = .automatic

  @Option(
    parsing: .upToNextOption,
    help: "Storage dtypes to check: float32, float16, bfloat16, fp8 (default: the first three on the CPU, float16 and bfloat16 on CUDA). fp8 runs its own case matrix, forward only, with a bfloat16 output.")
  var dtype: [DType] = []

  @Option(help: "Only the problems whose name contains this text.")
  var filter: String?

  @Option(help: "Seed of the random inputs (default: fresh each run; printed for replay).")
  var seed: UInt64?

  @Flag(help: "Skip the backward pass.")
  var forwardOnly = false

  @Option(help: "Also write the results as JSON to this file.")
  var json: String?

  @Flag(help: "List the problems and exit.")
  var list = false

  @OptionGroup(title: "CUDA tuning")
  var cudaTuning: CUDATuningOptions

  func run() throws {
    var problems = VerificationMatrix.standard
    var cacheCases = KVCacheMatrix.standard
    var varlenCases = VarlenVerificationMatrix.standard
    var float8Problems = dtype.contains(where: \.isFloat8) ? VerificationMatrix.float8 : []
    if let filter {
      problems = problems.filter { $0.name.contains(filter) }
      cacheCases = cacheCases.filter { $0.name.contains(filter) }
      varlenCases = varlenCases.filter { $0.name.contains(filter) }
      float8Problems = float8Problems.filter { $0.name.contains(filter) }
    }
    if list {
      for problem in problems + float8Problems { print(problem) }
      for testCase in cacheCases { print(testCase) }
      for testCase in varlenCases { print(testCase) }
      return
    }
    if problems.isEmpty && cacheCases.isEmpty && varlenCases.isEmpty && float8Problems.isEmpty {
      throw CommandLineFailure("--filter \(filter ?? "") matches no problem (see --list)")
    }
    let engine = try makeEngine()
    let verification = Verification(engine: engine)
    let dtypes = dtype.isEmpty ? defaultDTypes(backend: engine.backend.name) : dtype
    let seed = self.seed ?? UInt64.random(in: 1...UInt64.max)
    print("backend \(engine.backend.name) (\(engine.selectionReason)), seed \(seed)")
    let table = VerificationTable()
    print(table.header)
    var results: [VerificationResult] = []
    for dtype in dtypes {
      // fp8 has its own matrix (the head dims its kernel covers) and no KV-cache path.
      for var problem in dtype.isFloat8 ? float8Problems : problems {
        if forwardOnly { problem.backward = false }
        let result = verification.run(problem, dtype: dtype, seed: problemSeed(seed, problem.name))
        print(table.row(result))
        results.append(result)
      }
      // KV-cache inference (flash_attn_with_kvcache): forward only.
      for testCase in dtype.isFloat8 ? [] : cacheCases {
        let result = verification.run(testCase, dtype: dtype, seed: problemSeed(seed, testCase.name))
        print(table.row(result))
        results.append(result)
      }
      // Packed variable-length batches (cu_seqlens), against the per-sequence reference.
      for var testCase in dtype.isFloat8 ? [] : varlenCases {
        if forwardOnly { testCase.backward = false }
        let result = verification.run(testCase, dtype: dtype, seed: problemSeed(seed, testCase.name))
        print(table.row(result))
        results.append(result)
      }
    }
    let failures = results.filter { !$0.passed && !$0.unsupported }
    let unsupported = results.filter(\.unsupported)
    for failure in failures { print(table.failureDetail(failure)) }
    for result in unsupported { print("unsupported on \(engine.backend.name): \(result.name) \(result.dtype): \(result.error ?? "")") }
    let tested = results.count - unsupported.count
    print(
      "\(tested - failures.count) of \(tested) passed on \(engine.backend.name)"
        + (unsupported.isEmpty ? "" : " (\(unsupported.count) refused as unsupported, listed above)"))
    if let json {
      let report = VerificationReport(
        version: FlashAttentionCommand.version, backend: engine.backend.name,
        selectionReason: engine.selectionReason, seed: seed, passed: failures.isEmpty, results: results)
      try OutputFiles.writeJSON(report, to: json)
    }
    if !failures.isEmpty { throw ExitCode(1) }
  }

  /// The seed of one problem: the run's seed mixed with its name (FNV-1a), so that
  /// `--seed S --filter NAME` replays a problem whatever else runs.
  private func problemSeed(_ seed: UInt64, _ name: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return seed ^ hash
  }

  /// The engine of `--device`; with tuning flags, a CUDA backend built with them.
  private func makeEngine() throws -> AttentionEngine {
    guard cudaTuning.isSet else { return try AttentionEngine(backend: device) }
    let ordinal: Int
    switch device {
    case let .cuda(device): ordinal = device
    case .automatic: ordinal = 0
    case .cpu: throw CommandLineFailure("--forward-tile, --backward-tile, --forward-kernel, --decode-tile and --varlen-schedule need a CUDA --device")
    }
    let tuning = try cudaTuning.tuning()
    let backend = try CUDABackend(device: ordinal, tuning: tuning)
    // The decode loader that KV-cache cases get on this device (bulk falls back off sm_90).
    let loader = tuning.decodeLoader.runs(on: backend.device.arch) ? tuning.decodeLoader : .cpAsync
    return AttentionEngine(
      backend: backend,
      selectionReason: "cuda:\(ordinal) requested, with tuning overrides; decode loader \(loader.rawValue)")
  }

  /// fp32 storage is a CPU format; GPU kernels are checked in the formats they are built for.
  private func defaultDTypes(backend: String) -> [DType] {
    backend.hasPrefix("cuda") ? [.float16, .bfloat16] : [.float32, .float16, .bfloat16]
  }
}

/// The `--json` document of `verify`.
struct VerificationReport: Encodable {
  var version: String
  var backend: String
  var selectionReason: String
  var seed: UInt64
  var passed: Bool
  var results: [VerificationResult]
}

/// The text table of `verify`: one row per problem and dtype, relative L2 errors per output.
struct VerificationTable {
  private let columns = [("problem", 24), ("dtype", 14), ("shape", 44), ("options", 26)]
  private let checks = ["out", "lse", "dq", "dk", "dv"]

  var header: String {
    columns.map { pad($0.0, $0.1) }.joined() + checks.map { pad($0, 9) }.joined() + pad("fwd ms", 9) + "result"
  }

  func row(_ result: VerificationResult) -> String {
    var line = pad(result.name, 24) + pad(result.dtype, 14) + pad(result.shape, 44) + pad(result.options, 26)
    for name in checks {
      let check = result.checks.first { $0.name == name }
      line += pad(check.map { String(format: "%.1e", $0.relativeL2) } ?? "-", 9)
    }
    line += pad(result.forwardSeconds.map { String(format: "%.2f", $0 * 1000) } ?? "-", 9)
    return line + (result.passed ? "PASS" : result.unsupported ? "UNSUPPORTED" : "FAIL")
  }

  func failureDetail(_ result: VerificationResult) -> String {
    var text = "FAIL \(result.name) \(result.dtype) [\(result.shape)] \(result.options) seed \(result.seed):"
    if let error = result.error { text += " backend error: \(error)" }
    for violation in result.violations { text += " \(violation);" }
    for check in result.checks where !check.passed {
      text += " \(check.name) rel \(String(format: "%.3e", check.relativeL2)) > tol \(String(format: "%.3e", check.tolerance))"
      if let baseline = check.baselineError { text += " (same-precision baseline \(String(format: "%.3e", baseline)))" }
      if check.nonFinite > 0 { text += " nonfinite \(check.nonFinite)" }
    }
    return text
  }

  private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
  }
}
