import FlashAttentionCore
import _FlashAttentionKernelABI

/// The keep mask of a dropout call, from the generator every backend compiles (`fa_philox.h`):
/// test-only access to what the kernels drop, so that tests can compare them with a reference
/// that applies the same mask.
package struct DropoutMask: Sendable {
  package let dropout: AttentionDropout
  package let headsQ: Int

  package init(_ dropout: AttentionDropout, headsQ: Int) {
    self.dropout = dropout
    self.headsQ = headsQ
  }

  /// Whether query `i`'s probability of key `j` in head `h` of batch entry `b` is kept (`b` in
  /// this call's batch; the generator's coordinate adds `firstBatch`).
  package func keeps(batch b: Int, head h: Int, query i: Int, key j: Int) -> Bool {
    let batchHead = UInt32(truncatingIfNeeded: (dropout.firstBatch + b) * headsQ + h)
    return fa_dropout_keeps(
      dropout.seed, dropout.offset, dropout.keepThreshold, batchHead, UInt32(truncatingIfNeeded: i),
      UInt32(truncatingIfNeeded: j)) != 0
  }

  /// The factor P is multiplied by: `1 / (1 - p)` where kept, else 0.
  package func factor(batch b: Int, head h: Int, query i: Int, key j: Int) -> Double {
    keeps(batch: b, head: h, query: i, key: j) ? 1 / (1 - Double(dropout.probability)) : 0
  }

  /// The whole mask `[batch, heads_q, seqlen_q, seqlen_k]`, row-major (1 kept, 0 dropped).
  package func mask(batch: Int, seqlenQ: Int, seqlenK: Int) -> [UInt8] {
    var result = [UInt8](repeating: 0, count: batch * headsQ * seqlenQ * seqlenK)
    var index = 0
    for b in 0..<batch {
      for h in 0..<headsQ {
        for i in 0..<seqlenQ {
          for j in 0..<seqlenK {
            result[index] = keeps(batch: b, head: h, query: i, key: j) ? 1 : 0
            index += 1
          }
        }
      }
    }
    return result
  }
}
