import Foundation

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

  public init(
    _ name: String, _ shape: AttentionShape, _ options: AttentionOptions = AttentionOptions(),
    stridedInputs: Bool = false, backward: Bool = true
  ) {
    self.name = name
    self.shape = shape
    self.options = options
    self.stridedInputs = stridedInputs
    self.backward = backward
  }

  /// The options in words: "causal window=(16, 8) softcap=2.5 scale=0.5".
  public var optionsDescription: String {
    var parts: [String] = []
    if options.causal { parts.append("causal") }
    if let window = options.window { parts.append("window=\(window)") }
    if options.softcap > 0 { parts.append("softcap=\(options.softcap)") }
    if let scale = options.scale { parts.append("scale=\(scale)") }
    if options.deterministic { parts.append("deterministic") }
    if let slopes = options.alibiSlopes { parts.append(slopes.batch == nil ? "alibi" : "alibi(batch)") }
    if let dropout = options.activeDropout { parts.append("dropout=\(dropout.probability)") }
    if stridedInputs { parts.append("strided") }
    return parts.isEmpty ? "-" : parts.joined(separator: " ")
  }

  public var description: String { "\(name) [\(shape)] \(optionsDescription)" }
}

/// The built-in case matrix behind `flash-attention verify` and the tests: broad in features
/// (odd sizes, every head-dim bucket, GQA/MQA, causal with seqlen_q < and > seqlen_k, windows,
/// softcap, rows with no visible key, empty sequences, strided inputs), small in sizes so the
/// float64 reference stays quick.
public enum VerificationMatrix {
  /// FlashAttention's ALiBi slopes `2^(-8 (h + 1) / heads)`; a `(batch, heads)` table scales
  /// entry b's by `(b + 1) / 2`, so a kernel that reads the wrong row fails.
  public static func alibiSlopes(heads: Int, batch: Int? = nil) -> AlibiSlopes {
    let perHead = (0..<heads).map { Float(pow(2.0, -8.0 * Double($0 + 1) / Double(heads))) }
    guard let batch else { return AlibiSlopes(perHead: perHead) }
    return AlibiSlopes(batch: batch, values: (0..<batch).flatMap { b in perHead.map { $0 * Float(b + 1) / 2 } })
  }

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
      // ALiBi (FlashAttention's slopes 2^(-8(h+1)/H); a (batch, heads) table scaled per entry) and
      // dropout (a fixed seed and offset; the reference applies the same Philox mask).
      VerificationCase(
        "alibi-causal-gqa2", S(batch: 2, seqlenQ: 100, seqlenK: 150, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4, batch: 2))),
      VerificationCase(
        "alibi-window-softcap", S(batch: 1, seqlenQ: 90, headsQ: 2, headDim: 128),
        O(window: SlidingWindow(left: 16, right: 8), softcap: 5, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 2))),
      VerificationCase(
        "dropout-causal", S(batch: 2, seqlenQ: 129, headsQ: 2, headDim: 64),
        O(causal: true, dropout: AttentionDropout(probability: 0.17, seed: 42, offset: 8))),
      VerificationCase(
        "dropout-alibi-gqa2", S(batch: 1, seqlenQ: 64, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 128),
        O(alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4),
          dropout: AttentionDropout(probability: 0.3, seed: 0xdead_beef, offset: 123))),
    ]
  }()
}
