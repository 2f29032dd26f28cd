import FlashAttentionCore
import FlashAttentionTestSupport

/// The problems the CPU suite runs beside `VerificationMatrix.standard`: sizes off every block
/// size of the CPU kernels (6-row and 16/32-column blocks, 64-key tiles), masks that cut tiles,
/// the V-panel path, packed QKV. Small enough for the float64 reference in a debug build: the
/// longest side is 1000 at most.
enum CPUProblems {
  typealias S = AttentionShape
  typealias O = AttentionOptions

  /// Odd sizes (1, 7, 17, 129, 1000), every head dim bucket and d ≠ d_v, GQA groups 1 to 8.
  static let shapes: [AttentionProblem] = {
    var problems = [
      AttentionProblem("1x1-d1", S(batch: 1, seqlenQ: 1, headsQ: 1, headDim: 1)),
      AttentionProblem("7x17-d7-dv9", S(batch: 1, seqlenQ: 7, seqlenK: 17, headsQ: 2, headDim: 7, headDimV: 9)),
      AttentionProblem("b2-129x129", S(batch: 2, seqlenQ: 129, headsQ: 2, headDim: 64)),
      AttentionProblem("97x193-d128", S(batch: 1, seqlenQ: 97, seqlenK: 193, headsQ: 1, headDim: 128)),
      AttentionProblem("decode-1x1000-d128", S(batch: 1, seqlenQ: 1, seqlenK: 1000, headsQ: 1, headDim: 128)),
      AttentionProblem("200x45-d40-dv24", S(batch: 1, seqlenQ: 200, seqlenK: 45, headsQ: 1, headDim: 40, headDimV: 24)),
      AttentionProblem("1000x17-d256", S(batch: 1, seqlenQ: 1000, seqlenK: 17, headsQ: 1, headDim: 256)),
      AttentionProblem("dv72-d40", S(batch: 1, seqlenQ: 21, seqlenK: 30, headsQ: 2, headDim: 40, headDimV: 72), O(causal: true)),
      AttentionProblem("gqa3-d80", S(batch: 1, seqlenQ: 150, seqlenK: 97, headsQ: 6, headsKV: 2, headDim: 80)),
      // Empty sequences: rows without keys (O = 0, LSE = -inf, dQ = 0), keys without rows (dK = dV = 0).
      AttentionProblem("no-keys-d16", S(batch: 1, seqlenQ: 5, seqlenK: 0, headsQ: 2, headDim: 16)),
      AttentionProblem("no-queries-d16", S(batch: 1, seqlenQ: 0, seqlenK: 9, headsQ: 2, headDim: 16)),
    ]
    for seqlen in [1, 7, 17, 129] {
      problems.append(
        AttentionProblem("seqlen-\(seqlen)", S(batch: 2, seqlenQ: seqlen, seqlenK: seqlen + 3, headsQ: 2, headDim: 64)))
    }
    for headDim in [8, 40, 64, 80, 128, 256] {
      problems.append(
        AttentionProblem("head-dim-\(headDim)", S(batch: 1, seqlenQ: 17, seqlenK: 29, headsQ: 2, headDim: headDim)))
    }
    for group in [1, 2, 4, 8] {
      problems.append(
        AttentionProblem("gqa-\(group)", S(batch: 1, seqlenQ: 19, seqlenK: 33, headsQ: 8, headsKV: 8 / group, headDim: 40)))
    }
    return problems
  }()

  /// Causal and window masks with seqlen_q above and below seqlen_k (rows and whole tiles
  /// without a visible key), softcap, scale.
  static let masks: [AttentionProblem] = [
    AttentionProblem("causal-129", S(batch: 1, seqlenQ: 129, headsQ: 2, headDim: 64), O(causal: true)),
    AttentionProblem("causal-7x129", S(batch: 1, seqlenQ: 7, seqlenK: 129, headsQ: 2, headDim: 64), O(causal: true)),
    AttentionProblem("causal-129x7", S(batch: 1, seqlenQ: 129, seqlenK: 7, headsQ: 2, headDim: 64), O(causal: true)),
    // Bottom-right alignment leaves the first 70 rows without keys.
    AttentionProblem("causal-200x130-d33", S(batch: 1, seqlenQ: 200, seqlenK: 130, headsQ: 2, headDim: 33), O(causal: true)),
    AttentionProblem("causal-100x300-d16", S(batch: 1, seqlenQ: 100, seqlenK: 300, headsQ: 2, headDim: 16), O(causal: true)),
    AttentionProblem("causal-1000", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 64), O(causal: true)),
    AttentionProblem(
      "causal-gqa2-d48", S(batch: 1, seqlenQ: 129, headsQ: 4, headsKV: 2, headDim: 48), O(causal: true)),
    AttentionProblem(
      "causal-mqa3", S(batch: 1, seqlenQ: 129, headsQ: 3, headsKV: 1, headDim: 64), O(causal: true)),
    AttentionProblem(
      "causal-200x130-d80-dv32", S(batch: 1, seqlenQ: 200, seqlenK: 130, headsQ: 2, headDim: 80, headDimV: 32),
      O(causal: true)),
    AttentionProblem(
      "window-50-0-1000-d24", S(batch: 1, seqlenQ: 1000, headsQ: 1, headDim: 24),
      O(window: SlidingWindow(left: 50, right: 0))),
    AttentionProblem(
      "window-20-5-gqa2", S(batch: 1, seqlenQ: 257, headsQ: 4, headsKV: 2, headDim: 40, headDimV: 24),
      O(window: SlidingWindow(left: 20, right: 5))),
    AttentionProblem(
      "window-right-3", S(batch: 1, seqlenQ: 300, seqlenK: 150, headsQ: 1, headDim: 32),
      O(window: SlidingWindow(left: nil, right: 3))),
    AttentionProblem(
      "window-5-3-d80", S(batch: 1, seqlenQ: 50, seqlenK: 70, headsQ: 2, headDim: 80),
      O(window: SlidingWindow(left: 5, right: 3))),
    AttentionProblem(
      "window-9-causal-mqa4", S(batch: 1, seqlenQ: 70, seqlenK: 50, headsQ: 4, headsKV: 1, headDim: 40),
      O(causal: true, window: SlidingWindow(left: 9, right: nil))),
    AttentionProblem(
      "window-40-7-softcap-d128", S(batch: 1, seqlenQ: 257, seqlenK: 300, headsQ: 2, headsKV: 1, headDim: 128),
      O(window: SlidingWindow(left: 40, right: 7), softcap: 5)),
    AttentionProblem(
      "causal-softcap-7x129", S(batch: 1, seqlenQ: 7, seqlenK: 129, headsQ: 2, headDim: 7, headDimV: 9),
      O(causal: true, softcap: 5)),
    AttentionProblem("softcap-scale", S(batch: 1, seqlenQ: 150, seqlenK: 97, headsQ: 2, headDim: 64), O(scale: 0.3, softcap: 2)),
    AttentionProblem("softcap-1.5", S(batch: 1, seqlenQ: 33, seqlenK: 45, headsQ: 2, headDim: 64), O(scale: 0.6, softcap: 1.5)),
  ]

  /// Q, K and V as slices of one packed buffer, and padded rows.
  static let layouts: [AttentionProblem] = [
    AttentionProblem("packed-h3-d32", S(batch: 2, seqlenQ: 130, headsQ: 3, headDim: 32), layout: .packedQKV),
    AttentionProblem(
      "packed-causal-d48", S(batch: 2, seqlenQ: 130, headsQ: 2, headDim: 48), O(causal: true), layout: .packedQKV),
    AttentionProblem(
      "strided-window-gqa2", S(batch: 2, seqlenQ: 17, seqlenK: 23, headsQ: 4, headsKV: 2, headDim: 24),
      O(window: SlidingWindow(left: 4, right: 4)), layout: .strided),
  ]

  /// Problems for fp16 and bf16 storage beyond the verify matrix: GQA, masks, softcap, d = 256.
  static let halfPrecision: [AttentionProblem] = [
    AttentionProblem(
      "causal-gqa2-45x60", S(batch: 1, seqlenQ: 45, seqlenK: 60, headsQ: 4, headsKV: 2, headDim: 64), O(causal: true)),
    AttentionProblem("mqa3-d80", S(batch: 1, seqlenQ: 150, seqlenK: 97, headsQ: 3, headsKV: 1, headDim: 80)),
    AttentionProblem(
      "causal-gqa2-129x200", S(batch: 1, seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64), O(causal: true)),
    AttentionProblem("softcap-d24", S(batch: 1, seqlenQ: 65, headsQ: 2, headDim: 24), O(softcap: 3)),
    AttentionProblem("mqa3-97x193", S(batch: 1, seqlenQ: 97, seqlenK: 193, headsQ: 3, headsKV: 1, headDim: 64)),
    AttentionProblem("1000x17-d256", S(batch: 1, seqlenQ: 1000, seqlenK: 17, headsQ: 1, headDim: 256)),
    AttentionProblem(
      "softcap-window-d128", S(batch: 2, seqlenQ: 33, headsQ: 2, headDim: 128),
      O(window: SlidingWindow(left: 8, right: 2), softcap: 4)),
    AttentionProblem("causal-d40-40x17", S(batch: 1, seqlenQ: 40, seqlenK: 17, headsQ: 2, headDim: 40), O(causal: true)),
  ]

  /// V rows a multiple of 4 KiB apart, which the forward copies into column panels (16 wide,
  /// or 32 in the AVX-512 build): a partial last key tile, banded P·V under masks, softcap,
  /// GQA, d ≠ d_v, and width 48 (a 32-column panel and a 16-column one in the AVX-512 build).
  /// The panels are a forward-pass layout; the first problem checks the backward too.
  static let valuePanels: [AttentionProblem] = [
    AttentionProblem("panels-h8-d128", S(batch: 1, seqlenQ: 130, seqlenK: 200, headsQ: 8, headDim: 128)),
    AttentionProblem(
      "panels-causal-gqa2-dv128", S(batch: 1, seqlenQ: 193, headsQ: 16, headsKV: 8, headDim: 48, headDimV: 128),
      O(causal: true), backward: false),
    AttentionProblem(
      "panels-window-softcap", S(batch: 1, seqlenQ: 150, headsQ: 16, headDim: 64),
      O(window: SlidingWindow(left: 40, right: 7), softcap: 5), backward: false),
    AttentionProblem("panels-h32-d32", S(batch: 1, seqlenQ: 97, seqlenK: 290, headsQ: 32, headDim: 32), backward: false),
    AttentionProblem(
      "panels-h64-d48", S(batch: 1, seqlenQ: 70, seqlenK: 150, headsQ: 64, headDim: 48), O(causal: true),
      backward: false),
  ]

  /// Masked tiles leave parts of the score tiles unwritten (the banded products); these have
  /// such tiles in both passes, with softcap's extra tanh tile in one of them.
  static let maskedTiles: [AttentionProblem] = [
    AttentionProblem("causal-200x130", S(batch: 1, seqlenQ: 200, seqlenK: 130, headsQ: 2, headDim: 64), O(causal: true)),
    AttentionProblem(
      "window-16-8-softcap", S(batch: 1, seqlenQ: 150, headsQ: 2, headsKV: 1, headDim: 32),
      O(window: SlidingWindow(left: 16, right: 8), softcap: 2)),
    AttentionProblem(
      "causal-d48-dv16", S(batch: 1, seqlenQ: 100, headsQ: 2, headDim: 48, headDimV: 16), O(causal: true)),
  ]

  /// Problems whose work splits differently across 1 and 3 threads (query tiles, heads, and
  /// key chunks of a decode row).
  static let threadSplits: [AttentionProblem] = [
    AttentionProblem("300-mqa2", S(batch: 1, seqlenQ: 300, headsQ: 2, headsKV: 1, headDim: 64)),
    AttentionProblem("causal-b2-gqa2", S(batch: 2, seqlenQ: 131, seqlenK: 77, headsQ: 4, headsKV: 2, headDim: 40), O(causal: true)),
    AttentionProblem("decode-1x1000", S(batch: 1, seqlenQ: 1, seqlenK: 1000, headsQ: 1, headDim: 64)),
    // V in column panels, split over threads.
    AttentionProblem("panels-h32-d32", S(batch: 1, seqlenQ: 97, seqlenK: 290, headsQ: 32, headDim: 32), backward: false),
  ]
}
