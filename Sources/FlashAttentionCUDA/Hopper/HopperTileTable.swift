/// Tile sizes and schedule of the Hopper forward kernel per head-dim bucket, chosen by
/// measurement on the H100 (docs/perf-notes/cuda-hopper.md has the runs behind each row).
///
/// The block is always 128 query rows (two consumer warpgroups of 64); the table picks the keys
/// per tile and the K/V ring depth within the 227 KiB of shared memory a block may use, whether
/// the consumers ping-pong and overlap, and within the 240 registers a consumer thread gets
/// (every row compiles without spills: HopperForwardCompileTests).
enum HopperTileTable {
  struct Tile: Hashable, Sendable {
    var blockN: Int
    var stages: Int
    var pingPong: Bool
    var overlap: Bool
  }

  static func tile(headDim: Int, headDimV: Int, masked: Bool) -> Tile? {
    switch (headDim, headDimV, masked) {
    case (64, 64, false): Tile(blockN: 176, stages: 3, pingPong: false, overlap: true)
    case (64, 64, true): Tile(blockN: 128, stages: 3, pingPong: true, overlap: true)
    case (96, 96, _): Tile(blockN: 128, stages: 2, pingPong: false, overlap: true)
    case (128, 128, false): Tile(blockN: 176, stages: 2, pingPong: false, overlap: true)
    case (128, 128, true): Tile(blockN: 128, stages: 2, pingPong: true, overlap: true)
    case (192, 128, _): Tile(blockN: 96, stages: 2, pingPong: false, overlap: true)
    case (256, 256, false): Tile(blockN: 64, stages: 2, pingPong: false, overlap: true)
    case (256, 256, true): Tile(blockN: 80, stages: 2, pingPong: false, overlap: false)
    default: nil
    }
  }
}
