/// The built-in problem matrix behind `flash-attention verify` and every backend's tests: broad in features
/// (odd sizes, every head-dim bucket, GQA/MQA, causal with seqlen_q < and > seqlen_k, windows,
/// softcap, rows with no visible key, empty sequences, strided inputs), small in sizes so the
/// float64 reference stays quick.
package enum VerificationMatrix {
  package static let standard: [AttentionProblem] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    return [
      AttentionProblem("single", S(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 64)),
      AttentionProblem("odd-7x17-d40", S(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 40)),
      AttentionProblem("odd-17x129-d80", S(batch: 1, seqlenQ: 17, seqlenK: 129, headsQ: 2, headDim: 80)),
      AttentionProblem("seq129-d8", S(batch: 2, seqlenQ: 129, headsQ: 2, headDim: 8)),
      AttentionProblem("d32", S(batch: 1, seqlenQ: 45, seqlenK: 70, headsQ: 2, headDim: 32)),
      AttentionProblem("d96-gqa4", S(batch: 1, seqlenQ: 50, headsQ: 8, headsKV: 2, headDim: 96)),
      AttentionProblem("d128-gqa2", S(batch: 1, seqlenQ: 64, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 128)),
      AttentionProblem("d160", S(batch: 1, seqlenQ: 23, seqlenK: 41, headsQ: 2, headDim: 160)),
      AttentionProblem("d256", S(batch: 1, seqlenQ: 33, seqlenK: 47, headsQ: 2, headDim: 256)),
      AttentionProblem(
        "d512-gqa2-causal", S(batch: 1, seqlenQ: 77, seqlenK: 129, headsQ: 4, headsKV: 2, headDim: 512), O(causal: true)),
      AttentionProblem("mqa8", S(batch: 1, seqlenQ: 20, seqlenK: 77, headsQ: 8, headsKV: 1, headDim: 64)),
      AttentionProblem(
        "dv128-d192", S(batch: 1, seqlenQ: 31, seqlenK: 45, headsQ: 2, headsKV: 1, headDim: 192, headDimV: 128)),
      AttentionProblem("causal-sq<sk", S(batch: 1, seqlenQ: 17, seqlenK: 129, headsQ: 2, headDim: 64), O(causal: true)),
      AttentionProblem(
        "causal-sq>sk", S(batch: 1, seqlenQ: 129, seqlenK: 17, headsQ: 2, headDim: 64), O(causal: true)),
      AttentionProblem(
        "causal-square-d128", S(batch: 2, seqlenQ: 100, headsQ: 2, headDim: 128), O(causal: true)),
      AttentionProblem(
        "window-16-8", S(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headDim: 64),
        O(window: SlidingWindow(left: 16, right: 8))),
      AttentionProblem(
        "window-10-causal", S(batch: 1, seqlenQ: 90, headsQ: 2, headsKV: 1, headDim: 64),
        O(causal: true, window: SlidingWindow(left: 10, right: nil))),
      AttentionProblem(
        "window-right-5", S(batch: 1, seqlenQ: 60, seqlenK: 40, headsQ: 2, headDim: 40),
        O(window: SlidingWindow(left: nil, right: 5))),
      AttentionProblem(
        "window-empty-rows", S(batch: 1, seqlenQ: 60, seqlenK: 20, headsQ: 2, headDim: 64),
        O(window: SlidingWindow(left: 3, right: 0))),
      AttentionProblem(
        "softcap-2.5", S(batch: 1, seqlenQ: 65, headsQ: 2, headDim: 64), O(scale: 0.5, softcap: 2.5)),
      AttentionProblem(
        "softcap-causal-gqa", S(batch: 1, seqlenQ: 48, seqlenK: 80, headsQ: 4, headsKV: 2, headDim: 128),
        O(causal: true, softcap: 5)),
      AttentionProblem(
        "strided-gqa2", S(batch: 2, seqlenQ: 37, seqlenK: 53, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true), layout: .strided),
      AttentionProblem(
        "deterministic-gqa", S(batch: 1, seqlenQ: 200, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true, deterministic: true)),
      AttentionProblem("no-keys", S(batch: 1, seqlenQ: 5, seqlenK: 0, headsQ: 2, headDim: 64)),
      AttentionProblem("empty-sq", S(batch: 1, seqlenQ: 0, seqlenK: 10, headsQ: 2, headDim: 64)),
      AttentionProblem("decode-mqa", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 8, headsKV: 1, headDim: 128)),
      AttentionProblem("batch3-gqa2-257", S(batch: 3, seqlenQ: 257, headsQ: 4, headsKV: 2, headDim: 64)),
      AttentionProblem("long-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 64)),
      // fp32 V rows 4 KiB apart (8 heads of 128): the CPU forward's V-panel copy.
      AttentionProblem(
        "d128-kv8-causal", S(batch: 1, seqlenQ: 130, seqlenK: 201, headsQ: 8, headsKV: 8, headDim: 128),
        O(causal: true)),
      // On the H100: the split Hopper backward at d = 256 (its dQ kernel's 32-key tiles), causal
      // with more queries than keys (the first rows see none), GQA.
      AttentionProblem(
        "d256-causal-gqa2", S(batch: 1, seqlenQ: 150, seqlenK: 97, headsQ: 4, headsKV: 2, headDim: 256),
        O(causal: true)),
      // ALiBi (FlashAttention's slopes 2^(-8(h+1)/H); a (batch, heads) table scaled per entry) and
      // dropout (a fixed seed and offset; the reference applies the same Philox mask).
      AttentionProblem(
        "alibi-causal-gqa2", S(batch: 2, seqlenQ: 100, seqlenK: 150, headsQ: 4, headsKV: 2, headDim: 64),
        O(causal: true, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4, batch: 2))),
      AttentionProblem(
        "alibi-window-softcap", S(batch: 1, seqlenQ: 90, headsQ: 2, headDim: 128),
        O(window: SlidingWindow(left: 16, right: 8), softcap: 5, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 2))),
      // On the H100: the split Hopper backward with ALiBi (d = 128), key tiles on both sides of
      // the diagonal and across it (non-causal, seqlen_q < seqlen_k), MQA, per-batch slopes.
      AttentionProblem(
        "alibi-cross-mqa-d128", S(batch: 2, seqlenQ: 129, seqlenK: 300, headsQ: 4, headsKV: 1, headDim: 128),
        O(alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4, batch: 2))),
      AttentionProblem(
        "dropout-causal", S(batch: 2, seqlenQ: 129, headsQ: 2, headDim: 64),
        O(causal: true, dropout: AttentionDropout(probability: 0.17, seed: 42, offset: 8))),
      AttentionProblem(
        "dropout-alibi-gqa2", S(batch: 1, seqlenQ: 64, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 128),
        O(alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4),
          dropout: AttentionDropout(probability: 0.3, seed: 0xdead_beef, offset: 123))),
      // On the H100: the Hopper dropout forward's wide keep words (BN = 176 past 4k keys: 11
      // Philox calls a row, in groups of four) and the three-consumer d = 64 tile (1k+ keys).
      AttentionProblem(
        "dropout-long-d128", S(batch: 1, seqlenQ: 65, seqlenK: 4500, headsQ: 2, headsKV: 1, headDim: 128),
        O(dropout: AttentionDropout(probability: 0.1, seed: 7, offset: 1 << 33))),
      AttentionProblem(
        "dropout-d64-wide", S(batch: 1, seqlenQ: 200, seqlenK: 1100, headsQ: 2, headDim: 64),
        O(dropout: AttentionDropout(probability: 0.5, seed: 99, offset: 3))),
      // On the H100: the Hopper dropout backward: split d = 128 (its key/value kernel's
      // transposed keep bits and the dQ kernel's) causal with seqlen_q < seqlen_k and a second
      // batch entry; the deterministic d = 64 split with a window and GQA (the walk over the
      // group's heads changes the generator's head per step); d = 256 (FlashAttention-2's).
      AttentionProblem(
        "dropout-causal-d128", S(batch: 2, seqlenQ: 100, seqlenK: 230, headsQ: 2, headDim: 128),
        O(causal: true, dropout: AttentionDropout(probability: 0.2, seed: 5, offset: 77))),
      AttentionProblem(
        "dropout-window-det-gqa", S(batch: 1, seqlenQ: 190, seqlenK: 170, headsQ: 4, headsKV: 2, headDim: 64),
        O(window: SlidingWindow(left: 50, right: 20), deterministic: true,
          dropout: AttentionDropout(probability: 0.35, seed: 11, offset: 1))),
      AttentionProblem(
        "dropout-d256", S(batch: 1, seqlenQ: 33, seqlenK: 70, headsQ: 2, headDim: 256),
        O(dropout: AttentionDropout(probability: 0.25, seed: 3, offset: 9))),
    ]
  }()

  /// FlashAttention's ALiBi slopes `2^(-8 (h + 1) / heads)`; a `(batch, heads)` table scales
  /// entry b's by `(b + 1) / 2`, so a kernel that reads the wrong row fails.
  package static func alibiSlopes(heads: Int, batch: Int? = nil) -> AlibiSlopes {
    let perHead = (0..<heads).map { Float((-8.0 * Double($0 + 1) / Double(heads) * 0.6931471805599453).expValue) }
    guard let batch else { return AlibiSlopes(perHead: perHead) }
    return AlibiSlopes(batch: batch, values: (0..<batch).flatMap { b in perHead.map { $0 * Float(b + 1) / 2 } })
  }
}

extension VerificationMatrix {
  /// The fp8 matrix (`verify --dtype fp8`): the head dims the Hopper fp8 kernel is built for
  /// (64, 128, 256) with odd lengths, GQA/MQA, causal both ways, windows, softcap, strided rows,
  /// outlier channels, and a long row.
  package static let float8: [AttentionProblem] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    return [
      AttentionProblem("fp8-single", S(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 128)),
      AttentionProblem("fp8-odd-7x17-d64", S(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 64)),
      AttentionProblem("fp8-odd-129-d128", S(batch: 1, seqlenQ: 129, seqlenK: 200, headsQ: 2, headDim: 128)),
      AttentionProblem("fp8-d256", S(batch: 1, seqlenQ: 33, seqlenK: 147, headsQ: 2, headDim: 256)),
      AttentionProblem("fp8-gqa4-d128", S(batch: 2, seqlenQ: 70, seqlenK: 130, headsQ: 8, headsKV: 2, headDim: 128)),
      AttentionProblem("fp8-mqa-decode", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 8, headsKV: 1, headDim: 128)),
      AttentionProblem(
        "fp8-causal-sq<sk", S(batch: 1, seqlenQ: 17, seqlenK: 300, headsQ: 2, headDim: 128), O(causal: true)),
      AttentionProblem(
        "fp8-causal-sq>sk", S(batch: 1, seqlenQ: 300, seqlenK: 17, headsQ: 2, headDim: 64), O(causal: true)),
      AttentionProblem(
        "fp8-causal-d256-gqa", S(batch: 1, seqlenQ: 257, headsQ: 4, headsKV: 2, headDim: 256), O(causal: true)),
      AttentionProblem(
        "fp8-window-16-8", S(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headDim: 128),
        O(window: SlidingWindow(left: 16, right: 8))),
      AttentionProblem(
        "fp8-softcap", S(batch: 1, seqlenQ: 65, seqlenK: 190, headsQ: 2, headDim: 128), O(scale: 0.5, softcap: 2.5)),
      AttentionProblem(
        "fp8-strided", S(batch: 2, seqlenQ: 37, seqlenK: 153, headsQ: 4, headsKV: 2, headDim: 128), O(causal: true),
        layout: .strided),
      AttentionProblem(
        "fp8-outliers-d128", S(batch: 1, seqlenQ: 200, seqlenK: 300, headsQ: 2, headDim: 128), outliers: true),
      AttentionProblem(
        "fp8-outliers-causal-d64", S(batch: 1, seqlenQ: 150, headsQ: 2, headDim: 64), O(causal: true), outliers: true),
      AttentionProblem("fp8-long-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 128)),
    ]
  }()
}
