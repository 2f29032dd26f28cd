/// One attention problem to check against the float64 reference: a shape, options, how the
/// inputs lie in memory, and whether the backward pass is checked too. The `verify` matrix and
/// every backend's test matrix are lists of these; ``Verification`` runs one on an engine.
///
/// ```swift
/// let problem = AttentionProblem(
///   "window-7-3-gqa2", AttentionShape(batch: 1, seqlenQ: 17, seqlenK: 129, headsQ: 4, headsKV: 2, headDim: 64),
///   AttentionOptions(window: SlidingWindow(left: 7, right: 3)))
/// let result = Verification(engine: engine).run(problem, dtype: .bfloat16)  // result.passed
/// ```
///
/// Tests/README.md says where each backend's list is and how to add a case.
package struct AttentionProblem: Sendable, Hashable, CustomStringConvertible {
  /// How Q, K and V lie in memory (dO and the outputs are always contiguous).
  package enum Layout: String, Sendable, Hashable, CaseIterable {
    /// Each tensor packed row-major.
    case contiguous
    /// Each tensor's rows padded with 8 NaN elements (strides larger than the head dim), so a
    /// kernel that ignores the strides reads NaN.
    case strided
    /// Q, K and V as slices of one `[batch, seqlen, 3, heads, head_dim]` buffer, as a fused QKV
    /// projection leaves them. Needs seqlen_q = seqlen_k, heads_q = heads_kv and d = d_v.
    case packedQKV = "packed-qkv"
  }

  /// Short identifier for tables, test names and `verify --filter` ("causal-sq>sk").
  package var name: String
  package var shape: AttentionShape
  package var options: AttentionOptions
  package var layout: Layout
  /// Also check the backward pass (dQ, dK, dV).
  package var backward: Bool
  /// Q and K get outlier channels (every 16th column times 16), as activations of large language
  /// models have: the case that stresses fp8 quantisation.
  package var outliers: Bool

  package init(
    _ name: String, _ shape: AttentionShape, _ options: AttentionOptions = AttentionOptions(),
    layout: Layout = .contiguous, backward: Bool = true, outliers: Bool = false
  ) {
    self.outliers = outliers
    self.name = name
    self.shape = shape
    self.options = options
    self.layout = layout
    self.backward = backward
  }

  /// The options and a non-contiguous layout in words: "causal window=(16, 8) softcap=2.5 scale=0.5 strided".
  package var optionsDescription: String {
    var parts: [String] = []
    if options.causal { parts.append("causal") }
    if let window = options.window { parts.append("window=\(window)") }
    if options.softcap > 0 { parts.append("softcap=\(options.softcap)") }
    if let scale = options.scale { parts.append("scale=\(scale)") }
    if options.deterministic { parts.append("deterministic") }
    if let slopes = options.alibiSlopes { parts.append(slopes.batch == nil ? "alibi" : "alibi(batch)") }
    if let dropout = options.activeDropout { parts.append("dropout=\(dropout.probability)") }
    if layout != .contiguous { parts.append(layout.rawValue) }
    if outliers { parts.append("outliers") }
    return parts.isEmpty ? "-" : parts.joined(separator: " ")
  }

  package var description: String {
    "\(name) [\(shape)] \(optionsDescription)" + (backward ? "" : " forward only")
  }
}
