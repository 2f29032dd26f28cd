/// Dropout on the attention probabilities (FlashAttention-2's `dropout_p`): each entry of P is
/// kept with probability `1 - probability` and the kept ones are scaled by `1 / (1 - probability)`;
/// the LSE stays that of the undropped softmax.
///
/// The keep mask comes from Philox 4×32-10 (`fa_philox.h`, the one definition the CPU kernels and
/// the CUDA kernels compile) keyed by `(seed, offset)` and each element's (batch, query head,
/// query, key), so it is the same on every backend, tile size and thread count, and the backward
/// pass regenerates it instead of storing it. The same seed and offset give the same mask;
/// callers that want a fresh mask per call advance the offset (Python draws both from torch's
/// generator).
public struct AttentionDropout: Sendable, Hashable {
  /// The probability of dropping an entry, in [0, 1).
  public var probability: Float
  public var seed: UInt64
  public var offset: UInt64
  /// The generator's batch coordinate of this call's batch entry 0: a packed batch runs its
  /// sequences one by one, each as a batch of one, and sequence `b` keeps the coordinate `b`.
  public var firstBatch: Int

  public init(probability: Float, seed: UInt64, offset: UInt64 = 0) {
    self.probability = probability
    self.seed = seed
    self.offset = offset
    self.firstBatch = 0
  }

  /// Entries whose 8-bit random number is below this are kept: `floor((1 - p) · 2^8)`, in
  /// 0 ... 255 for p > 0, so p takes effect in steps of 1/256 (FlashAttention-2's resolution:
  /// sixteen entries per Philox call; at 16 bits an entry the calls cost twice as much, and they
  /// are most of dropout's time in the GPU kernels). The kept entries are still scaled by
  /// `1 / (1 - p)`, as FlashAttention-2 does.
  public var keepThreshold: UInt32 {
    let scaled = (1 - Double(probability)) * 256.0
    return scaled >= 255.0 ? 255 : UInt32(max(0, scaled.rounded(.down)))
  }

  /// The factor of a kept entry.
  public var keptScale: Float { 1 / (1 - probability) }

  func validate() throws(FlashAttentionError) {
    if !(probability >= 0 && probability < 1) {
      throw .invalidArgument(name: "dropout_p", value: "\(probability)", reason: "must be in [0, 1)")
    }
  }
}
