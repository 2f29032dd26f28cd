import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

@Suite("Decode kernels: compilation (NVRTC, no GPU) and plans")
struct DecodeKernelTests {
  @Test(
    "every KV-cache kernel variant compiles without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_80", "sm_90a"])
  func decodeCatalogCompiles(arch: String) throws {
    let keys = CUDAKernelCatalog.decodeKeys(arch: arch)
    #expect(keys.contains { $0 is DecodeKey } && keys.contains { $0 is DecodeCombineKey } && keys.contains { $0 is KVAppendKey })
    for key in keys {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      // Two CTAs of a d <= 128 decode tile share an SM: at most 255 registers, and the table's
      // count of CTAs per SM assumes they fit beside each other.
      if let decode = key as? DecodeKey, decode.headDim <= 128, decode.tile.mTiles == 1 {
        #expect(resources.registers * decode.threads * 2 <= 65536, "\(key): \(resources.registers) registers")
      }
    }
  }

  /// The tiles the lead's `bench --grid decode --decode-tile auto,2x6,4x6,8x3` sweep runs on the
  /// H100 (bf16, d 128, GQA 32/8, paged and not): each must compile without spills and fit one
  /// CTA's shared memory.
  @Test(
    "the decode-tile sweep's tiles compile without spills on sm_90a",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: [
      DecodeTuning(warps: 2, stages: 6), DecodeTuning(warps: 4, stages: 6), DecodeTuning(warps: 8, stages: 3),
      DecodeTuning(warps: 4, stages: 3, keepsM16: true),
    ])
  func sweepTilesCompile(tuning: DecodeTuning) throws {
    for paged in [false, true] {
      let key = DecodePlan.make(
        shape: AttentionShape(batch: 1, seqlenQ: 1, seqlenK: 8192, headsQ: 32, headsKV: 8, headDim: 128),
        dtype: .bfloat16, options: AttentionOptions(), paged: paged, maxKeys: 8192, requestedSplits: 0,
        arch: "sm_90a", multiprocessors: 132, tuning: tuning
      ).key
      #expect(key.tile.warps == tuning.warps && key.tile.stages == tuning.stages)
      #expect(key.tile.swapped == !tuning.keepsM16, "4 packed rows take the swapped tile unless +m16: \(key)")
      #expect(key.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: "sm_90a"), "\(key)")
      let kernel = try KernelCompiler.compile(key.program, arch: "sm_90a")
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      #expect(resources.registers * key.threads <= 65536, "\(key): \(resources.registers) registers")
    }
  }

  @Test("the decode tile fits shared memory on every architecture, two CTAs per SM up to d = 128")
  func tilesFit() {
    for arch in ["sm_80", "sm_86", "sm_89", "sm_90a"] {
      for key in CUDAKernelCatalog.decodeKeys(arch: arch, exhaustive: true) {
        guard let decode = key as? DecodeKey else { continue }
        #expect(decode.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: arch), "\(decode)")
        if arch == "sm_90a" && decode.headDim <= 128 && decode.tile.mTiles == 1 {
          #expect(TileTables.decodeCTAsPerMultiprocessor(sharedMemoryBytes: decode.sharedMemoryBytes, arch: arch) >= 2, "\(decode)")
        }
      }
    }
  }

  func plan(batch: Int, queries: Int = 1, keys: Int, splits: Int = 0) -> DecodePlan {
    DecodePlan.make(
      shape: AttentionShape(batch: batch, seqlenQ: queries, seqlenK: keys, headsQ: 32, headsKV: 8, headDim: 128),
      dtype: .bfloat16, options: AttentionOptions(), paged: true, maxKeys: keys, requestedSplits: splits,
      arch: "sm_90a", multiprocessors: 132)
  }

  @Test("split counts: a small batch on a long cache fills the GPU, a large batch needs none, a request is capped")
  func splitCounts() {
    let single = plan(batch: 1, keys: 8192)
    #expect(single.rowBlocks == 1 && single.key.tile.swapped && single.key.tile.rows == 8)
    #expect(single.splits == TileTables.maxAutomaticDecodeSplits, "batch 1 × 8 kv heads = 8 CTAs without splits on 132 SMs: \(single.splits)")
    #expect(plan(batch: 4, keys: 8192).splits == 8, "batch 4 fills one wave with 8 (the measured best)")
    #expect(8 * single.splits <= 2 * 132 * 2, "more than two waves of CTAs: \(single.splits)")
    #expect(single.combine != nil)
    #expect(plan(batch: 64, keys: 8192).splits == 1)
    #expect(plan(batch: 1, keys: 16).splits == 1, "one tile of keys cannot be split")
    #expect(plan(batch: 1, keys: 8192, splits: 1000).splits == TileTables.maxDecodeSplits)
    #expect(plan(batch: 2, keys: 8192, splits: 3).splits == 3)
    // Speculative decoding: 8 tokens × a group of 4 = 32 packed rows, two m16 tiles.
    let speculative = plan(batch: 1, queries: 8, keys: 4096)
    #expect(speculative.key.tile.mTiles == 2 && speculative.rowBlocks == 1)
  }

  @Test("the swapped 8-row tile serves at most 8 packed rows; 9-16 take one m16 tile, more two (d <= 128)")
  func swappedTileRows() {
    func tile(_ rows: Int, _ override: DecodeTuning? = nil, d: Int = 128) -> DecodeTile {
      TileTables.decodeTile(headDim: d, headDimV: d, rows: rows, arch: "sm_90a", override: override, loader: .cpAsyncLines)
    }
    for rows in [1, 4, 7, 8] {
      #expect(tile(rows).swapped && tile(rows).rows == 8, "\(rows) rows")
      #expect(tile(rows, d: 256).swapped, "\(rows) rows, d 256")
    }
    for rows in [9, 16] { #expect(!tile(rows).swapped && tile(rows).rows == 16, "\(rows) rows") }
    #expect(!tile(17).swapped && tile(17).rows == 32)
    let keep = DecodeTuning(warps: 4, stages: 3, keepsM16: true)
    #expect(!tile(4, keep).swapped && tile(4, keep).rows == 16)
    #expect(tile(4, DecodeTuning(warps: 8, stages: 3)).swapped)
    // The 8-row tile's key is its own kernel.
    #expect(DecodeKey.sharedMemory(headDim: 128, headDimV: 128, tile: tile(4)) < DecodeKey.sharedMemory(headDim: 128, headDimV: 128, tile: tile(16)))
    #expect("\(tile(4))" == "8r/4w/3s")
  }

  @Test("--decode-tile parses WARPSxSTAGES with an optional +m16")
  func tuningParses() {
    #expect(DecodeTuning(parsing: "4x3") == DecodeTuning(warps: 4, stages: 3))
    #expect(DecodeTuning(parsing: "8x4+m16") == DecodeTuning(warps: 8, stages: 4, keepsM16: true))
    for bad in ["4x3+m8", "4x", "x3", "3x3", "4x9", "4x3x2", "+m16", "4x3+m16+m16"] {
      #expect(DecodeTuning(parsing: bad) == nil, "\(bad)")
    }
  }
}
