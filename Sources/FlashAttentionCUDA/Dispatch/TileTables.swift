/// The Hopper forward's schedule for one key: keys per tile, ring depths, consumer warpgroups
/// and their ordering. `TileTables.hopperForward`/`hopperForwardFloat8` choose it per problem;
/// a tuning run may replace it (`--hopper-forward-tile`, `CUDAKernelTuning.hopperForwardTile`).
package struct HopperForwardTile: Hashable, Sendable {
  package var blockN: Int
  /// Depth of the K/V shared-memory rings.
  package var stages: Int
  /// Q tile buffers: 2 lets the producer load the next work tile's Q during this one (it
  /// matters on the persistent grid, where a block runs many short tiles).
  package var qStages: Int
  /// The consumer warpgroups take turns issuing their GEMMs (named barriers).
  package var pingPong: Bool
  /// Each warpgroup issues its next QKᵀ before the current softmax.
  package var overlap: Bool
  /// Consumer warpgroups of 64 rows: 3 gives each scheduler a third warp to hide the
  /// softmax's latencies (what bounds d = 64 with 2), at 160 registers per consumer thread
  /// instead of 240.
  package var consumers: Int

  package init(blockN: Int, stages: Int, qStages: Int, pingPong: Bool, overlap: Bool, consumers: Int = 2) {
    self.blockN = blockN
    self.stages = stages
    self.qStages = qStages
    self.pingPong = pingPong
    self.overlap = overlap
    self.consumers = consumers
  }
}

/// Every tile table of the CUDA kernels, side by side (like FlashAttention-3's `tile_size.h`).
///
/// Each choice names the measurement behind it: a run in docs/perf-notes/cuda-sm80.md or
/// cuda-hopper.md (H100, bf16, against PyTorch's FlashAttention-2 and cuDNN in the same device
/// call) and the commit that adopted it. Every row compiles without spills on its target
/// (`flash-attention kernels`, the compile tests).
enum TileTables {
  // MARK: FlashAttention-2 kernels (sm80 and later)

  /// The forward tile for a head-dim bucket (the larger of d and d_v decides the registers).
  /// Run 3 of cuda-sm80.md, N = 8k (3ae9779): 4 warps with two m16 tiles each (every K/V
  /// fragment feeds two MMAs) beat 8 warps of one tile by 30 % at d = 64; at d = 128 two tiles
  /// per warp measured faster still but spill 40 bytes on sm_90a, so d = 128 keeps one tile per
  /// warp (Q in registers) on 4 warps (+42 % over 8 warps), as do wider heads (64 x 64: 262
  /// TFLOP/s at d = 256).
  /// Past d = 256 (the value columns come in chunks of at most 256, `FlashAttention2Key.forwardValueChunks`)
  /// Q and K rows of up to 512 columns take the shared memory: 64 keys a tile where they fit
  /// (167 KB at d = 512 on sm_90), else 32 or 16 (0 spills at d 512 / d_v 256, 246 registers).
  /// With value groups (`FlashAttention2Key.valueGroups`, d_v past 256) the warps of a group
  /// hold O for their share of the columns, so the registers follow that share; the shared
  /// memory holds all of V's (200 KB at d = d_v = 512 and 64 keys).
  static func flashAttention2Forward(headDim: Int, headDimV: Int, arch: String, valueGroups: Int = 1) -> AttentionTile {
    let width = max(FlashAttention2Key.paddedTo16(headDim), FlashAttention2Key.paddedTo16(headDimV) / valueGroups)
    if width <= 112 { return AttentionTile(blockM: 128, blockN: 64, warps: 4, qInRegisters: false) }
    if width <= 256 { return AttentionTile(blockM: 64, blockN: 64, warps: 4, qInRegisters: width <= 128) }
    let tiles = [64, 32, 16].map { AttentionTile(blockM: 64, blockN: $0, warps: 4, qInRegisters: false) }
    return tiles.first {
      FlashAttention2Key.forwardSharedMemory(tile: $0, headDim: headDim, headDimV: headDimV, valueGroups: valueGroups)
        <= FlashAttention2Key.sharedMemoryLimit(arch: arch)
    } ?? tiles[tiles.count - 1]
  }

  /// The backward key/value tiles to try, best first (FlashAttention-2's sm80 table, adopted in
  /// 8f98bdb, runs 4-6: 0.75-0.86x FA2 at N = 8k, from 0.44-0.60x): 8 warps; 128 queries x 128
  /// keys up to d = 64, 64 x 128 up to 128, 64 x 64 wider. GPUs with less shared memory per
  /// block (sm_86, sm_89) take the first that fits with one Q/dO buffer. Past d = 256 one tile:
  /// 32 queries x 32 keys on 8 warps, the only one whose dK and dV (32 x 512 fp32 each, 128
  /// registers a thread) leave room for the rest without spills (64 x 32 spills 732 bytes,
  /// 64 x 16 none but adds dQ for every 16 keys), with one k-step a loop iteration.
  static func flashAttention2BackwardCandidates(headDim: Int, headDimV: Int) -> [AttentionTile] {
    let width = max(FlashAttention2Key.paddedTo32(headDim), FlashAttention2Key.paddedTo32(headDimV))
    let candidates: [(Int, Int, Int)] =
      width <= 64 ? [(128, 128, 8), (64, 128, 8), (64, 64, 8)]
      : width <= 128 ? [(64, 128, 8), (64, 64, 8), (32, 64, 8)]
      : width <= 256 ? [(64, 64, 8), (32, 64, 8), (32, 32, 4)]
      : [(32, 32, 8)]
    return candidates.map { AttentionTile(blockM: $0.0, blockN: $0.1, warps: $0.2, qInRegisters: false) }
  }

  // MARK: Hopper forward (sm_90a)

  /// Sequence lengths up to which the Hopper forward runs one block per SM over the work items
  /// (the persistent grid) instead of one block per item: +13-16 % at N ≤ 1k (run 3, 4aeb5b9);
  /// rechecked in run 13 (df10f7e): +8 % at 2k, +3 % at 4k, even at 8k.
  static let hopperForwardPersistentMaxSeqlenK = 4096

  /// The Hopper forward's tile for head dims (d, d_v), nil where no kernel is built. Within the
  /// 227 KiB of shared memory a block may use and 240 (160 with three consumers) registers per
  /// consumer thread. `persistent`: the launch uses the persistent grid; `seqlenK`: the keys per
  /// row (0 when listing variants).
  static func hopperForward(
    headDim: Int, headDimV: Int, masked: Bool, softcap: Bool, persistent: Bool, seqlenK: Int
  ) -> HopperForwardTile? {
    switch (headDim, headDimV, masked) {
    // d = 64: three consumers (192 rows), +6-16 % at N = 8k-16k causal or not, +3-12 % at
    // N = 1k-4k without a mask (run 14, df10f7e). Not below N = 1024, where a 192-row tile leaves
    // much of the last one empty (N = 512: -20 %), nor causal on the persistent grid below
    // N = 4k (H100, 2026-12-06, scripts/device-p1.sh: 1k -15 %, 2k -9 %, 4k +7.6 %: 439 against
    // 408 TFLOP/s, cuDNN 439), nor with softcap (spills at 160 registers).
    case (64, 64, let masked)
    where !softcap && (!persistent || (!masked && seqlenK >= 1024) || (masked && seqlenK >= 4096)):
      HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: false, overlap: true, consumers: 3)
    // Short sequences (d = 64 and 128 unmasked): BN = 128 tiles N = 512·2^k exactly, where 176
    // leaves a partial, masked last tile (+6 % at N = 512, runs 8 and 10: c101f38, 1a25afd), and
    // leaves room for a second Q buffer at d = 128 (+4-7 %); long ones: BN = 176, fewer per-tile
    // fixed costs (+17 % with separate K/V rings at d = 128, N = 16k, run 4, 4aeb5b9).
    case (64, 64, false) where persistent:
      HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: false, overlap: true)
    case (64, 64, false):
      HopperForwardTile(blockN: 176, stages: 3, qStages: 2, pingPong: false, overlap: true)
    // Masked: ping-pong helps causal (+3 %, run 4) and costs 12 % unmasked (run 1).
    case (64, 64, true):
      HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: true, overlap: true)
    case (96, 96, _):
      HopperForwardTile(blockN: 128, stages: 2, qStages: 1, pingPong: false, overlap: true)
    case (128, 128, false) where persistent:
      HopperForwardTile(blockN: 128, stages: 2, qStages: 2, pingPong: false, overlap: true)
    case (128, 128, false):
      HopperForwardTile(blockN: 176, stages: 2, qStages: 1, pingPong: false, overlap: true)
    case (128, 128, true):
      HopperForwardTile(blockN: 128, stages: 2, qStages: 2, pingPong: true, overlap: true)
    case (192, 128, _):
      HopperForwardTile(blockN: 96, stages: 2, qStages: 1, pingPong: false, overlap: true)
    // d = 256: BN = 64 with overlap beats BN = 80 without at every length for both masks (runs 7
    // and 8, c101f38; BN = 80 spills with overlap).
    case (256, 256, _):
      HopperForwardTile(blockN: 64, stages: 2, qStages: 1, pingPong: false, overlap: true)
    default: nil
    }
  }

  /// The fp8 (e4m3) Hopper forward's tile, within 227 KiB of shared memory holding Q, K, V and
  /// the V^T ring and 232 registers per consumer thread. BN must be a multiple of 128 (whole V^T
  /// panels); d = 64 pads Q/K/V to 128-column panels (TMA fills zeros). At d = 128 every BN = 128
  /// tile measured the same (H100, 2026-12-06, scripts/device-p1.sh: 697-721 TFLOP/s with or
  /// without ping-pong, 2-4 stages); d = 256 was measured (below).
  static func hopperForwardFloat8(headDim: Int, headDimV: Int, masked: Bool, softcap: Bool) -> HopperForwardTile? {
    switch (headDim, headDimV) {
    case (64, 64): HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: masked, overlap: true)
    // d = 128 without a mask or softcap: BN = 256 (two stages, one Q buffer, neither ping-pong
    // nor overlap), once the V transpose issued less: H100, 2026-12-06 (scripts/device-r2.sh,
    // alternated with the BN = 128 tile): 937 / 963 TFLOP/s at N 8k / 16k against 849 / 871
    // (+10 %); with ping-pong 662 / 680. Its masked variants and varlen softcap spill.
    // The serial ping-pong (one turn per GEMM) measured slower: 803-833 against 936-965 (H100,
    // 2026-12-07, scripts/device-r10.sh).
    case (128, 128) where !masked && !softcap:
      HopperForwardTile(blockN: 256, stages: 2, qStages: 1, pingPong: false, overlap: false)
    case (128, 128): HopperForwardTile(blockN: 128, stages: 3, qStages: 2, pingPong: true, overlap: true)
    // Two stages of Q, K, V and V^T at d = 256 leave room for one Q buffer only. No overlap: S,
    // O and P of the next tile spill at 232 registers (56-236 bytes). No ping-pong: H100,
    // 2026-12-06 (scripts/device-p2.sh), 855-987 TFLOP/s at N 4k-16k causal or not, against
    // 635-691 with it (+29-43 %), the same as with overlap (which spills).
    // The serial ping-pong with one turn per GEMM (r10, 2026-12-07): 1113-1143 against 1118-1153.
    case (256, 256): HopperForwardTile(blockN: 128, stages: 2, qStages: 1, pingPong: false, overlap: false)
    default: nil
    }
  }

  // MARK: Hopper backward (sm_90a)

  /// Keys per block of the Hopper key/value kernel: 128 (64 per consumer warpgroup) for d = 64
  /// and 128 (b2aa2c3, runs 18-20); at d = 256 dK and dV of 64 keys fill a warpgroup's
  /// registers, so both warpgroups share 64 keys and own half the head dim each (a5a2472, run
  /// 21).
  static func hopperBackwardKeys(headDim: Int) -> Int { headDim == 256 ? 64 : 128 }

  /// Keys per K/V tile of the Hopper dQ kernel: 32 at d = 256, where two stages of 64 do not fit
  /// beside Q and dO; 64 elsewhere (run 28, 3ba06e2: +5-8 % over 32 at d = 128).
  static func hopperBackwardDQKeys(headDim: Int) -> Int { headDim == 256 ? 32 : 64 }

  /// Whether the Hopper backward runs split (a key/value kernel without dQ, then a dQ kernel
  /// per query block, no fp32 atomics) rather than fused. Runs 27-28 (3ba06e2): split +40-54 %
  /// at d = 256 (the dQ reductions held the L2 at 85 %), +3-15 % at d = 128, -5..+5 % at d = 64;
  /// the deterministic mode always splits (no atomics: the same bits every run).
  static func hopperBackwardIsSplit(headDim: Int, deterministic: Bool) -> Bool {
    deterministic || headDim >= 128
  }

  /// Whether the Hopper backward runs fused with bulk dQ reductions (`HopperBackwardKey.dqBulk`)
  /// at this head dim where a key takes them (`HopperBackwardKey.acceptsDQBulk`; not
  /// deterministic). r14 (H100, 2026-12-07, bf16, N 1k-16k, causal both, forms alternated in one call):
  /// d 128 1.09x the split form (geometric mean; 1.13-1.17 at N 4k-16k non-causal, 0.97 at
  /// 1k causal) and 0.96x cuDNN (from 0.88x); d 64 1.06x the fused form with atomics
  /// (0.99-1.12). d 256 has no shared memory left for the pieces. With dQ's GEMM issued first
  /// (`HopperBackwardKey.dqFirst`, r20, alternated with the above): d 128 1.04x (1.01-1.08),
  /// d 64 1.05x (1.00-1.10), so every key that compiles without spills in that order takes it
  /// (`HopperBackwardKey.acceptsDQFirst`: d 64 with every feature, d 128 plain and ALiBi unmasked).
  static func hopperBackwardTakesBulk(headDim: Int) -> Bool {
    HopperBackwardKey.dqBulkHeadDims.contains(headDim)
  }
}
