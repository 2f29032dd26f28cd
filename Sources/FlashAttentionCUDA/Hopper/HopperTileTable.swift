/// Tile sizes and schedule of the Hopper forward kernel per head-dim bucket, chosen by
/// measurement on the H100 (docs/perf-notes/cuda-hopper.md has the runs behind each row).
///
/// The block is 128 query rows (two consumer warpgroups of 64) or 192 (three); the table picks
/// the consumers, the keys per tile, the K/V ring depth and the Q buffers within the 227 KiB of shared memory a block
/// may use, whether the consumers ping-pong and overlap, and within the 240 registers a consumer
/// thread gets (every row compiles without spills: HopperForwardCompileTests).
enum HopperTileTable {
  struct Tile: Hashable, Sendable {
    var blockN: Int
    var stages: Int
    /// Q tile buffers: 2 lets the producer load the next work tile's Q during this one (it
    /// matters on the persistent grid, where a block runs many short tiles).
    var qStages: Int
    var pingPong: Bool
    var overlap: Bool
    /// Consumer warpgroups: 3 gives each scheduler a third warp to hide the softmax's latencies
    /// (what bounds d = 64 with 2), at the cost of 160 registers per consumer thread instead of 240.
    var consumers = 2
  }

  /// `persistent`: the launch runs one block per SM over many work tiles (short sequences);
  /// `seqlenK`: the keys per row (0 when the caller has no problem at hand, e.g. to list variants).
  static func tile(
    headDim: Int, headDimV: Int, masked: Bool, softcap: Bool, persistent: Bool, seqlenK: Int
  ) -> Tile? {
    switch (headDim, headDimV, masked) {
    // d = 64: three consumers (192 rows), +6–16% at N = 8k–16k causal or not, +3–12% at
    // N = 1k–4k without a mask (run 14). Not below N = 1024, where a 192-row tile leaves much of
    // the last one empty (N = 512: −20%), nor causal on the persistent grid (N = 2k: −6%), nor
    // with softcap (spills at 160 registers).
    case (64, 64, let masked) where !softcap && (!persistent || (!masked && seqlenK >= 1024)):
      Tile(blockN: 128, stages: 3, qStages: 2, pingPong: false, overlap: true, consumers: 3)
    // Short sequences (d = 64 and 128 unmasked): BN = 128 tiles N = 512·2^k exactly, where 176
    // leaves a partial, masked last tile (+6% at N = 512, runs 8 and 10), and leaves room for a
    // second Q buffer at d = 128 (+4–7%); long ones: BN = 176 (fewer per-tile fixed costs).
    case (64, 64, false) where persistent: Tile(blockN: 128, stages: 3, qStages: 2, pingPong: false, overlap: true)
    case (64, 64, false): Tile(blockN: 176, stages: 3, qStages: 2, pingPong: false, overlap: true)
    case (64, 64, true): Tile(blockN: 128, stages: 3, qStages: 2, pingPong: true, overlap: true)
    case (96, 96, _): Tile(blockN: 128, stages: 2, qStages: 1, pingPong: false, overlap: true)
    case (128, 128, false) where persistent: Tile(blockN: 128, stages: 2, qStages: 2, pingPong: false, overlap: true)
    case (128, 128, false): Tile(blockN: 176, stages: 2, qStages: 1, pingPong: false, overlap: true)
    case (128, 128, true): Tile(blockN: 128, stages: 2, qStages: 2, pingPong: true, overlap: true)
    case (192, 128, _): Tile(blockN: 96, stages: 2, qStages: 1, pingPong: false, overlap: true)
    case (256, 256, _): Tile(blockN: 64, stages: 2, qStages: 1, pingPong: false, overlap: true)
    default: nil
    }
  }
}
