import ArgumentParser
import FlashAttention
import FlashAttentionTools

/// `--alibi-slopes`, `--dropout` and `--seed`: the options whose values come from a file or a
/// generator, shared by the commands that run attention.
struct ScoreFeatureOptions: ParsableArguments {
  @Option(
    name: .customLong("alibi-slopes"),
    help: ArgumentHelp(
      "ALiBi slopes, float32 (heads_q) or (batch, heads_q): adds -slope * |i + seqlen_k - seqlen_q - j| to the scores.",
      valueName: "FILE.npy"))
  var alibiSlopes: String?

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Dropout probability on the attention weights, in [0, 1) (0 disables it).", valueName: "P"))
  var dropout: Float?

  @Option(help: ArgumentHelp("Seed of the dropout mask (default: random, printed).", valueName: "S"))
  var seed: UInt64?

  @Option(name: .customLong("dropout-offset"), help: ArgumentHelp("Offset of the dropout mask's generator.", valueName: "N"))
  var dropoutOffset: UInt64 = 0

  /// `options` with the slopes read and the dropout set; a random seed is printed to stderr.
  func apply(to options: AttentionOptions) throws -> AttentionOptions {
    var options = options
    if let alibiSlopes {
      let tensor = try NPYFile.read(path: alibiSlopes, argument: "alibi-slopes")
      guard tensor.dtype == .float32, (1...2).contains(tensor.shape.count) else {
        throw CommandLineFailure(
          "--alibi-slopes \(alibiSlopes): needs float32 of shape (heads_q) or (batch, heads_q), got \(tensor.dtype) \(tensor.shape)")
      }
      let values = tensor.floats()
      options.alibiSlopes =
        tensor.shape.count == 1 ? AlibiSlopes(perHead: values) : AlibiSlopes(batch: tensor.shape[0], values: values)
    }
    if let dropout, dropout != 0 {
      let seed = self.seed ?? UInt64.random(in: 0...UInt64.max)
      if self.seed == nil { writeStandardError("flash-attention: dropout seed \(seed)\n") }
      options.dropout = AttentionDropout(probability: dropout, seed: seed, offset: dropoutOffset)
    }
    try options.validate()
    return options
  }
}
