import ArgumentParser
import FlashAttention
import FlashAttentionTools

/// `flash-attention run`: attention on `.npy` files.
struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Attention forward (and backward with --dout) on .npy files.",
    discussion: """
      Inputs are .npy arrays, little-endian float32 or float16, C order, laid out \
      [batch, seqlen, heads, head_dim]; outputs have the inputs' dtype, LSE is float32 \
      [batch, heads_q, seqlen_q]. Every output appears only when the whole run succeeded.
      """)

  @Option(help: ArgumentHelp("Queries [batch, seqlen_q, heads_q, head_dim].", valueName: "Q.npy"))
  var q: String

  @Option(help: ArgumentHelp("Keys [batch, seqlen_k, heads_kv, head_dim].", valueName: "K.npy"))
  var k: String

  @Option(help: ArgumentHelp("Values [batch, seqlen_k, heads_kv, head_dim_v].", valueName: "V.npy"))
  var v: String

  @Option(help: ArgumentHelp("Output O [batch, seqlen_q, heads_q, head_dim_v].", valueName: "O.npy"))
  var out: String

  @Option(help: ArgumentHelp("Log-sum-exp of each row, float32 [batch, heads_q, seqlen_q] (-inf for a row that sees no key).", valueName: "LSE.npy"))
  var lse: String?

  @Flag(help: "Causal mask aligned to the bottom-right corner (key j visible to query i iff j <= i + seqlen_k - seqlen_q).")
  var causal = false

  // The numeric options parse their next word unconditionally, so that `--window-left -1` (the
  // documented unbounded value) is a value, not an unknown flag `-1`.
  @Option(
    name: .customLong("window-left"), parsing: .unconditional,
    help: ArgumentHelp("Sliding window: keys visible up to L before the diagonal (-1: unbounded).", valueName: "L"))
  var windowLeft: Int?

  @Option(
    name: .customLong("window-right"), parsing: .unconditional,
    help: ArgumentHelp("Sliding window: keys visible up to R after the diagonal (-1: unbounded).", valueName: "R"))
  var windowRight: Int?

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Soft-capping of the scores, s = C * tanh(s / C) (0 disables it).", valueName: "C"))
  var softcap: Float?

  @Option(parsing: .unconditional, help: ArgumentHelp("Score scale (default 1/sqrt(head_dim)).", valueName: "S"))
  var scale: Float?

  @Flag(help: "Bit-reproducible results: the same bits on every run (a backward pass without floating-point atomics).")
  var deterministic = false

  @OptionGroup(title: "ALiBi and dropout")
  var features: ScoreFeatureOptions

  @Option(help: ArgumentHelp("Gradient of the output, for the backward pass (needs --dq, --dk, --dv).", valueName: "dO.npy"))
  var dout: String?

  @Option(help: ArgumentHelp("Output dQ, like q.", valueName: "dQ.npy"))
  var dq: String?

  @Option(help: ArgumentHelp("Output dK, like k (summed over the query heads of a group).", valueName: "dK.npy"))
  var dk: String?

  @Option(help: ArgumentHelp("Output dV, like v (summed over the query heads of a group).", valueName: "dV.npy"))
  var dv: String?

  @Option(help: "Backend: cpu, cuda, cuda:N or auto.")
  var device: BackendChoice = .automatic

  func run() throws {
    let backwardFlags = [dout, dq, dk, dv].filter { $0 != nil }.count
    if backwardFlags != 0 && backwardFlags != 4 {
      throw CommandLineFailure("--dout, --dq, --dk and --dv go together: give all four or none")
    }
    let options = try attentionOptions()
    try AtomicFileGroup.checkDistinct(outputs: outputFiles, inputs: inputFiles)
    let q = try NPYFile.read(path: self.q, argument: "q")
    let k = try NPYFile.read(path: self.k, argument: "k")
    let v = try NPYFile.read(path: self.v, argument: "v")
    let dOut = try dout.map { path throws(FlashAttentionError) in try NPYFile.read(path: path, argument: "dout") }
    var engine = try AttentionEngine(backend: device)
    let results: Results
    let first = Result { [engine] () throws(FlashAttentionError) -> Results in
      try compute(engine: engine, q: q, k: k, v: v, dOut: dOut, options: options)
    }
    switch first {
    case let .success(value):
      results = value
    case let .failure(error):
      // `auto` means the GPU when it can do the job: what its kernels lack (float32 storage, a
      // head dim) runs on the CPU instead, and the tool says so.
      guard device == .automatic, engine.backend.name != "cpu", case .unsupported = error else { throw error }
      writeStandardError("flash-attention: \(error); running on the CPU instead\n")
      engine = try AttentionEngine(backend: .cpu)
      results = try compute(engine: engine, q: q, k: k, v: v, dOut: dOut, options: options)
    }
    var outputs = AtomicFileGroup()
    try outputs.add(npy: results.out, path: self.out, argument: "out")
    if let path = self.lse { try outputs.add(npy: results.lse, path: path, argument: "lse") }
    if let gradients = results.gradients, let dq, let dk, let dv {
      try outputs.add(npy: gradients.dQ, path: dq, argument: "dq")
      try outputs.add(npy: gradients.dK, path: dk, argument: "dk")
      try outputs.add(npy: gradients.dV, path: dv, argument: "dv")
    }
    try outputs.commit()
    print("wrote \(outputs.paths.joined(separator: ", ")) (\(q.dtype), \(engine.backend.name))")
  }

  /// The input files with their flags' names.
  var inputFiles: [FileArgument] {
    [("q", q), ("k", k), ("v", v), ("dout", dout)].compactMap { argument, path in
      path.map { FileArgument(argument: argument, path: $0) }
    }
  }

  /// The output files with their flags' names.
  var outputFiles: [FileArgument] {
    [("out", out), ("lse", lse), ("dq", dq), ("dk", dk), ("dv", dv)].compactMap { argument, path in
      path.map { FileArgument(argument: argument, path: $0) }
    }
  }

  typealias Results = (out: HostTensor, lse: HostTensor, gradients: (dQ: HostTensor, dK: HostTensor, dV: HostTensor)?)

  /// Forward, and backward when `dOut` is given.
  private func compute(
    engine: AttentionEngine, q: HostTensor, k: HostTensor, v: HostTensor, dOut: HostTensor?,
    options: AttentionOptions
  ) throws(FlashAttentionError) -> Results {
    let (out, lse) = try engine.forward(q: q, k: k, v: v, options: options)
    let gradients = try dOut.map { dOut throws(FlashAttentionError) in
      try engine.backward(q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, options: options)
    }
    return (out, lse, gradients)
  }

  /// The options from the flags, with the window's FlashAttention convention (-1 unbounded, the
  /// same as leaving the flag out).
  func attentionOptions() throws -> AttentionOptions {
    for (flag, value) in [("--window-left", windowLeft), ("--window-right", windowRight)] {
      if let value, value < -1 {
        throw CommandLineFailure("\(flag) \(value) makes no sense: use a bound >= 0, or -1 for unbounded")
      }
    }
    let left = windowLeft.flatMap { $0 == -1 ? nil : $0 }
    let right = windowRight.flatMap { $0 == -1 ? nil : $0 }
    if causal, let right, right != 0 {
      throw CommandLineFailure("--window-right \(right) conflicts with --causal (causal means a right bound of 0)")
    }
    let window = left == nil && right == nil ? nil : SlidingWindow(left: left, right: right)
    let options = AttentionOptions(
      scale: scale, causal: causal, window: window, softcap: softcap ?? 0, deterministic: deterministic)
    try options.validate()
    return try features.apply(to: options)
  }
}
