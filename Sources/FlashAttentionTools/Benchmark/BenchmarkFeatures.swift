import FlashAttentionCore

/// The flash implementations with a score feature on, measured beside plain `flash` in one call
/// (`bench --alibi --dropout P`): `flash-alibi` (FlashAttention's slopes), `flash-dropout`
/// (probability `BenchmarkSettings.dropoutProbability`, a fixed seed), and on CUDA
/// `flash-alibi-sm80` (`--impls`): ALiBi on the FlashAttention-2 kernels whatever the
/// `--alibi-kernels` flag, to time both routes in one run, and `flash-dropout-sm80`: the dropout
/// forward on the FlashAttention-2 kernels whatever `--dropout-kernels` says (likewise), and
/// `flash-window` (`--impls`): a sliding window of `windowRadius` keys on each side of the
/// diagonal (with `--causal yes`, left only), the mask whose kernels differ from causal's.
package enum BenchmarkFeatures {
  package static let alibi = "flash-alibi"
  package static let alibiSM80 = "flash-alibi-sm80"
  package static let dropout = "flash-dropout"
  package static let dropoutSM80 = "flash-dropout-sm80"
  package static let window = "flash-window"
  /// The window's bound on each side: a fixed 1024 keys, so that at N ≥ 4k most key blocks of a
  /// query block are outside it and the kernels' window paths (not the full tiles) are timed.
  package static let windowRadius = 1024

  /// Whether `impl` runs the flash backend (plain or with a feature).
  package static func isFlash(_ impl: String) -> Bool {
    impl == "flash" || impl == alibi || impl == alibiSM80 || impl == dropout || impl == dropoutSM80 || impl == window
  }

  /// The options of `impl` on `benchmarkCase`.
  package static func options(
    impl: String, case benchmarkCase: BenchmarkCase, settings: BenchmarkSettings
  ) -> AttentionOptions {
    var options = AttentionOptions(causal: benchmarkCase.causal, deterministic: settings.deterministic)
    if impl == alibi || impl == alibiSM80 {
      options.alibiSlopes = VerificationMatrix.alibiSlopes(heads: benchmarkCase.shape.headsQ)
    }
    if impl == dropout || impl == dropoutSM80 {
      options.dropout = AttentionDropout(probability: settings.dropoutProbability, seed: 0x5eed, offset: 0)
    }
    if impl == window {
      options.window = SlidingWindow(left: windowRadius, right: benchmarkCase.causal ? 0 : windowRadius)
    }
    return options
  }
}

extension ForwardArguments {
  /// The same tensors under other options.
  func with(_ options: AttentionOptions) throws(FlashAttentionError) -> ForwardArguments {
    try ForwardArguments(q: q, k: k, v: v, out: out, lse: lse, options: options, descale: descale)
  }
}

extension BackwardArguments {
  /// The same tensors under other options.
  func with(_ options: AttentionOptions) throws(FlashAttentionError) -> BackwardArguments {
    try BackwardArguments(q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, options: options)
  }
}
