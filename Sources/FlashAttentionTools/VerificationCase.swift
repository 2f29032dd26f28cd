/// One problem of the verification matrix: a shape, options, and how the inputs are laid out.
public struct VerificationCase: Sendable, Hashable, CustomStringConvertible {
  /// Short identifier for tables and `--filter` ("causal-sq>sk").
  public var name: String
  public var shape: AttentionShape
  public var options: AttentionOptions
  /// Inputs are views with padded rows (strides larger than the head dim), not packed arrays.
  public var stridedInputs: Bool
  /// Also check the backward pass (dQ, dK, dV).
  public var backward: Bool
  /// Q and K get outlier channels (every 16th column times 16), as activations of large language
  /// models have: the case that stresses fp8 quantisation.
  public var outliers: Bool

  public init(
    _ name: String, _ shape: AttentionShape, _ options: AttentionOptions = AttentionOptions(),
    stridedInputs: Bool = false, backward: Bool = true, outliers: Bool = false
  ) {
    self.name = name
    self.shape = shape
    self.options = options
    self.stridedInputs = stridedInputs
    self.backward = backward
    self.outliers = outliers
  }

  /// The options in words: "causal window=(16, 8) softcap=2.5 scale=0.5".
  public var optionsDescription: String {
    var parts: [String] = []
    if options.causal { parts.append("causal") }
    if let window = options.window { parts.append("window=\(window)") }
    if options.softcap > 0 { parts.append("softcap=\(options.softcap)") }
    if let scale = options.scale { parts.append("scale=\(scale)") }
    if options.deterministic { parts.append("deterministic") }
    if stridedInputs { parts.append("strided") }
    if outliers { parts.append("outliers") }
    return parts.isEmpty ? "-" : parts.joined(separator: " ")
  }

  public var description: String { "\(name) [\(shape)] \(optionsDescription)" }
}

/// The built-in case matrix behind `flash-attention verify` and the tests: broad in features
/// (odd sizes, every head-dim bucket, GQA/MQA, causal with seqlen_q < and > seqlen_k, windows,
/// softcap, rows with no visible key, empty sequences, strided inputs), small in sizes so the
/// float64 reference stays quick.
public enum VerificationMatrix {
  public static let standard: [VerificationCase] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    return [
      VerificationCase("single", S(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 64)),
      VerificationCase("odd-7x17-d40", S(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 40)),
      VerificationCase("odd-17x129-d80", S(batch: 1, seqlenQ: 17, seqlenK: 129, headsQ: 2, headDim: 80)),
      VerificationCase("seq129-d8", S(batch: 2, seqlenQ: 129, headsQ: 2, headDim: 8)),
      VerificationCase("d32", S(batch: 1, seqlenQ: 45, seqlenK: 70, headsQ: 2, headDim: 32)),
      VerificationCase("d96-gqa4", S(batch: 1, seqlenQ: 50, headsQ: 8, headsKV: 2, headDim: 96)),
      VerificationCase("d128-gqa2", S(batch: 1, seqlenQ: 64, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 128)),
      VerificationCase("d160", S(batch: 1, seqlenQ: 23, seqlenK: 41, headsQ: 2, headDim: 160)),
      VerificationCase("d256", S(batch: 1, seqlenQ: 33, seqlenK: 47, headsQ: 2, headDim: 256)),
      VerificationCase("mqa8", S(batch: 1, seqlenQ: 20, seqlenK: 77, headsQ: 8, headsKV: 1, headDim: 64)),
      VerificationCase(
        "dv128-d192", S(batch: 1, seqlenQ: 31, seqlenK: 45, headsQ: 2, headsKV: 1, headDim: 192, headDimV: 128)),
      VerificationCase("causal-sq<sk", S(batch: 1, seqlenQ: 17, seqlenK: 129, headsQ: 2, headDim: 64), O(causal: true)),
      VerificationCase(
        "causal-sq>sk", S(batch: 1, seqlenQ: 129, seqlenK: 17, headsQ: 2, headDim: 64), O(causal: true)),
      VerificationCase(
        "causal-square-d128", S(batch: 2, seqlenQ: 100, headsQ: 2, headDim: 128), O(causal: true)),
      VerificationCase(
        "window-16-8", S(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headDim: 64),
        O(window: SlidingWindow(left: 16, right: 8))),
      VerificationCase(
        "window-10-causal", S(batch: 1, seqlenQ: 90, headsQ: 2, headsKV: 1, headDim: 64),
        O(causal: true, window: SlidingWindow(left: 10, right: nil))),
      VerificationCase(
        "window-right-5", S(batch: 1, seqlenQ: 60, seqlenK: 40, headsQ: 2, headDim: 40),
        O(window: SlidingWindow(left: nil, right: 5))),
      VerificationCase(
        "window-empty-rows", S(batch: 1, seqlenQ: 60, seqlenK: 20, headsQ: 2, headDim: 64),
        O(window: SlidingWindow(left: 3, right: 0))),
      VerificationCase(
        "softcap-2.5", S(batch: 1, seqlenQ: 65, headsQ: 2, headDim: 64), O(scale: 0.5, softcap: 2.5)),
      VerificationCase(
        "softcap-causal-gqa", S(batch: 1, seqlenQ: 48, seqlenK: 80, headsQ: 4, headsKV: 2, headDim: 128),
        O(causal: true, softcap: 5)),
      VerificationCase(
        "strided-gqa2", S(batch: 2, seqlenQ: 37, seqlenK: 53, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true), stridedInputs: true),
      VerificationCase(
        "deterministic-gqa", S(batch: 1, seqlenQ: 200, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true, deterministic: true)),
      VerificationCase("no-keys", S(batch: 1, seqlenQ: 5, seqlenK: 0, headsQ: 2, headDim: 64)),
      VerificationCase("empty-sq", S(batch: 1, seqlenQ: 0, seqlenK: 10, headsQ: 2, headDim: 64)),
      VerificationCase("decode-mqa", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 8, headsKV: 1, headDim: 128)),
      VerificationCase("batch3-gqa2-257", S(batch: 3, seqlenQ: 257, headsQ: 4, headsKV: 2, headDim: 64)),
      VerificationCase("long-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 64)),
      // fp32 V rows 4 KiB apart (8 heads of 128): the CPU forward's V-panel copy.
      VerificationCase(
        "d128-kv8-causal", S(batch: 1, seqlenQ: 130, seqlenK: 201, headsQ: 8, headsKV: 8, headDim: 128),
        O(causal: true)),
      // On the H100: the split Hopper backward at d = 256 (its dQ kernel's 32-key tiles), causal
      // with more queries than keys (the first rows see none), GQA.
      VerificationCase(
        "d256-causal-gqa2", S(batch: 1, seqlenQ: 150, seqlenK: 97, headsQ: 4, headsKV: 2, headDim: 256),
        O(causal: true)),
    ]
  }()
}

extension VerificationMatrix {
  /// The fp8 matrix (`verify --dtype fp8`): the head dims the Hopper fp8 kernel is built for
  /// (64, 128, 256) with odd lengths, GQA/MQA, causal both ways, windows, softcap, strided rows,
  /// outlier channels, and a long row.
  public static let float8: [VerificationCase] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    return [
      VerificationCase("fp8-single", S(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 128)),
      VerificationCase("fp8-odd-7x17-d64", S(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 64)),
      VerificationCase("fp8-odd-129-d128", S(batch: 1, seqlenQ: 129, seqlenK: 200, headsQ: 2, headDim: 128)),
      VerificationCase("fp8-d256", S(batch: 1, seqlenQ: 33, seqlenK: 147, headsQ: 2, headDim: 256)),
      VerificationCase("fp8-gqa4-d128", S(batch: 2, seqlenQ: 70, seqlenK: 130, headsQ: 8, headsKV: 2, headDim: 128)),
      VerificationCase("fp8-mqa-decode", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 8, headsKV: 1, headDim: 128)),
      VerificationCase(
        "fp8-causal-sq<sk", S(batch: 1, seqlenQ: 17, seqlenK: 300, headsQ: 2, headDim: 128), O(causal: true)),
      VerificationCase(
        "fp8-causal-sq>sk", S(batch: 1, seqlenQ: 300, seqlenK: 17, headsQ: 2, headDim: 64), O(causal: true)),
      VerificationCase(
        "fp8-causal-d256-gqa", S(batch: 1, seqlenQ: 257, headsQ: 4, headsKV: 2, headDim: 256), O(causal: true)),
      VerificationCase(
        "fp8-window-16-8", S(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headDim: 128),
        O(window: SlidingWindow(left: 16, right: 8))),
      VerificationCase(
        "fp8-softcap", S(batch: 1, seqlenQ: 65, seqlenK: 190, headsQ: 2, headDim: 128), O(scale: 0.5, softcap: 2.5)),
      VerificationCase(
        "fp8-strided", S(batch: 2, seqlenQ: 37, seqlenK: 153, headsQ: 4, headsKV: 2, headDim: 128), O(causal: true),
        stridedInputs: true),
      VerificationCase(
        "fp8-outliers-d128", S(batch: 1, seqlenQ: 200, seqlenK: 300, headsQ: 2, headDim: 128), outliers: true),
      VerificationCase(
        "fp8-outliers-causal-d64", S(batch: 1, seqlenQ: 150, headsQ: 2, headDim: 64), O(causal: true), outliers: true),
      VerificationCase("fp8-long-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 128)),
    ]
  }()
}
