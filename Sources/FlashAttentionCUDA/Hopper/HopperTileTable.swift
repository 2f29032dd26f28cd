/// Tile sizes and schedule of the Hopper forward kernel per head-dim bucket, chosen by
/// measurement on the H100 (docs/perf-notes/cuda-hopper.md has the runs behind each row).
///
/// The block is always 128 query rows (two consumer warpgroups of 64); the table picks the keys
/// per tile, the K/V ring depth and the Q buffers within the 227 KiB of shared memory a block
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
  }

  /// `persistent`: the launch runs one block per SM over many work tiles (short sequences).
  static func tile(headDim: Int, headDimV: Int, masked: Bool, persistent: Bool) -> Tile? {
    switch (headDim, headDimV, masked) {
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
