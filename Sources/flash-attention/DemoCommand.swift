import ArgumentParser
import FlashAttention
import FlashAttentionTools
import FlashAttentionCPU
import Foundation

/// `flash-attention demo` (also what runs with no arguments): forward and backward on random
/// data, timed, and checked against the float64 reference on the first query rows.
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Attention forward and backward on random data: timed, and checked against float64.")

  @Option(help: "Backend: cpu, cuda, cuda:N or auto.")
  var device: BackendChoice = .automatic

  @Option(help: "Storage dtype (default: float32 on the CPU, bfloat16 on CUDA).")
  var dtype: DType?

  @Option(help: "Batch size.")
  var batch = 2

  @Option(help: "Sequence length (queries and keys).")
  var seqlen = 1024

  @Option(help: "Query heads.")
  var heads = 8

  @Option(
    name: .customLong("kv-heads"),
    help: "Key/value heads, a divisor of --heads (default 2 when --heads is even, else 1: grouped-query attention).")
  var kvHeads: Int?

  @Option(name: .customLong("head-dim"), help: "Head dimension.")
  var headDim = 64

  @Flag(inversion: .prefixedNo, help: "Causal mask.")
  var causal = true

  @Option(name: .customLong("check-rows"), help: "Query rows checked against the float64 reference.")
  var checkRows = 128

  @Option(help: "Timed repetitions (after one warm-up); the median is reported.")
  var repeats = 3

  /// `--kv-heads`, or a default that divides every `--heads`.
  var resolvedKVHeads: Int { kvHeads ?? (heads.isMultiple(of: 2) ? 2 : 1) }

  func validate() throws {
    for (flag, value) in [("--batch", batch), ("--seqlen", seqlen), ("--heads", heads), ("--kv-heads", resolvedKVHeads),
      ("--head-dim", headDim), ("--repeats", repeats)] where value < 1 {
      throw ValidationError("\(flag) must be at least 1 (got \(value))")
    }
    if !heads.isMultiple(of: resolvedKVHeads) {
      throw ValidationError("--kv-heads \(resolvedKVHeads) must divide --heads \(heads)")
    }
    if checkRows < 1 { throw ValidationError("--check-rows must be at least 1 (got \(checkRows))") }
  }

  func run() throws {
    let engine = try AttentionEngine(backend: device)
    let dtype = self.dtype ?? (engine.backend.name.hasPrefix("cuda") ? .bfloat16 : .float32)
    if dtype.isFloat8 {
      throw CommandLineFailure("the demo runs forward and backward; fp8 is forward only: use `verify --dtype fp8` or `bench --dtypes fp8`")
    }
    let kvHeads = resolvedKVHeads
    let shape = AttentionShape(batch: batch, seqlenQ: seqlen, headsQ: heads, headsKV: kvHeads, headDim: headDim)
    try shape.validate()
    let options = AttentionOptions(causal: causal)
    print(
      "flash-attention demo: \(causal ? "causal " : "")attention of \(batch) x \(seqlen) tokens, \(heads) query heads "
        + "sharing \(kvHeads) key/value heads, head_dim \(headDim), \(dtype), on \(engine.backend.name) "
        + ((engine.backend as? CPUBackend).map { "with the \($0.instructionSet) kernels " } ?? "")
        + "(\(engine.selectionReason))")
    var random = VerificationRandom(seed: UInt64.random(in: 1...UInt64.max))
    let q = try random.tensor(shape.qShape, dtype: dtype, name: "q")
    let k = try random.tensor(shape.kShape, dtype: dtype, name: "k")
    let v = try random.tensor(shape.vShape, dtype: dtype, name: "v")
    let dOut = try random.tensor(shape.oShape, dtype: dtype, name: "dout")

    let flops = shape.forwardFLOPs(
      visibleScores: AttentionMask(options: options, seqlenQ: seqlen, seqlenK: seqlen).visibleScoreCount)
    // Outputs are allocated once: the timed calls write into the same views.
    let out = try HostTensor(shape: shape.oShape, dtype: dtype, name: "out")
    let lse = try HostTensor(shape: shape.lseShape, dtype: .float32, name: "lse")
    let dQ = try HostTensor(shape: shape.qShape, dtype: dtype, name: "dq")
    let dK = try HostTensor(shape: shape.kShape, dtype: dtype, name: "dk")
    let dV = try HostTensor(shape: shape.vShape, dtype: dtype, name: "dv")
    func forwardPass() throws(FlashAttentionError) {
      try engine.forward(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options)
    }
    func backwardPass() throws(FlashAttentionError) {
      try engine.backward(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
        dV: dV.view, options: options)
    }
    try forwardPass()
    try backwardPass()
    var forwardTimes: [Double] = []
    var backwardTimes: [Double] = []
    for _ in 0..<repeats {
      let start = ContinuousClock.now
      try forwardPass()
      let middle = ContinuousClock.now
      try backwardPass()
      forwardTimes.append(seconds(middle - start))
      backwardTimes.append(seconds(ContinuousClock.now - middle))
    }
    let forward = median(forwardTimes)
    let backward = median(backwardTimes)
    print(String(format: "  forward   %9.2f ms  %8.1f GFLOP/s", forward * 1e3, flops / forward / 1e9))
    print(String(format: "  backward  %9.2f ms  %8.1f GFLOP/s", backward * 1e3, 2.5 * flops / backward / 1e9))
    print("  (median of \(repeats) after a warm-up; FLOPs counted as in the FlashAttention papers)")

    let passed = try check(q: q, k: k, v: v, dOut: dOut, out: out, lse: lse, dQ: dQ, options: options)
    print("")
    print("next: `flash-attention verify` checks the full case matrix, `flash-attention run --help` runs")
    print("attention on your own .npy files, `flash-attention info` shows the backends of this machine.")
    if !passed { throw ExitCode(1) }
  }

  /// Compares O, LSE and dQ of the first query rows with the float64 reference. Those rows are a
  /// sub-problem of their own (without a mask they see every key; with the causal mask and
  /// seqlen_q = seqlen_k, row i sees keys 0...i), computed on views of the same memory.
  private func check(
    q: HostTensor, k: HostTensor, v: HostTensor, dOut: HostTensor, out: HostTensor, lse: HostTensor,
    dQ: HostTensor, options: AttentionOptions
  ) throws -> Bool {
    let rows = min(checkRows, seqlen)
    let keys = causal ? rows : seqlen
    func rowsOf(_ tensor: HostTensor, _ count: Int) -> TensorView {
      var view = tensor.view
      view.shape[1] = count
      return view
    }
    var lseRows = lse.view
    lseRows.shape[2] = rows
    let qRows = rowsOf(q, rows)
    let kRows = rowsOf(k, keys)
    let vRows = rowsOf(v, keys)
    let dOutRows = rowsOf(dOut, rows)
    let reference = try ReferenceAttention.forward(q: qRows, k: kRows, v: vRows, options: options)
    let gradients = try ReferenceAttention.backward(q: qRows, k: kRows, v: vRows, dOut: dOutRows, options: options)
    var baselineOut: [Double]?
    var baselineDQ: [Double]?
    if q.dtype != .float32 {
      baselineOut = try ReferenceAttention.samePrecisionForward(q: qRows, k: kRows, v: vRows, options: options).out
      baselineDQ =
        try ReferenceAttention.samePrecisionBackward(q: qRows, k: kRows, v: vRows, dOut: dOutRows, options: options).dQ
    }
    var passed = true
    var parts: [String] = []
    for (name, actual, expected, baseline, dtype) in [
      ("O", rowsOf(out, rows).gatherFloats(), reference.out, baselineOut, q.dtype),
      ("LSE", lseRows.gatherFloats(), reference.lse, nil, DType.float32),
      ("dQ", rowsOf(dQ, rows).gatherFloats(), gradients.dQ, baselineDQ, q.dtype),
    ] {
      let check = VerificationCheck(name, actual: actual, expected: expected, baseline: baseline, dtype: dtype)
      passed = passed && check.passed
      parts.append(name + String(format: " %.1e (tolerance %.1e)", check.relativeL2, check.tolerance))
    }
    print(
      "  float64 reference on the first \(rows) query rows, relative L2 error: "
        + parts.joined(separator: ", ") + (passed ? ": PASS" : ": FAIL"))
    return passed
  }

  private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
  }

  private func median(_ values: [Double]) -> Double {
    values.sorted()[values.count / 2]
  }
}
