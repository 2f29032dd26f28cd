import FlashAttentionCore
import FlashAttentionTools
import Testing

@testable import FlashAttentionCUDA

/// The decode kernel's two loaders (`--decode-loader cpasync|bulk`): where the bulk-copy loader
/// applies and where it falls back, its shared-memory layout, and its compilation (NVRTC, no GPU).
@Suite("Decode loader: selection, layout and compilation")
struct DecodeLoaderTests {
  let shape = AttentionShape(batch: 1, seqlenQ: 1, seqlenK: 8192, headsQ: 32, headsKV: 8, headDim: 128)

  func plan(arch: String, loader: DecodeLoader, paged: Bool = true, tuning: DecodeTuning? = nil) -> DecodePlan {
    DecodePlan.make(
      shape: shape, dtype: .bfloat16, options: AttentionOptions(), paged: paged, maxKeys: 8192, requestedSplits: 0,
      arch: arch, multiprocessors: 132, tuning: tuning, loader: loader)
  }

  @Test("bulk runs on sm_90 only; elsewhere the plan falls back to cp.async with the same tile and splits")
  func archFallback() {
    #expect(plan(arch: "sm_90a", loader: .bulk).key.loader == .bulk)
    for arch in ["sm_80", "sm_86", "sm_89", "sm_120"] {
      let bulk = plan(arch: arch, loader: .bulk)
      #expect(bulk.key.loader == .cpAsync, "\(arch)")
      #expect(bulk == plan(arch: arch, loader: .cpAsync), "\(arch)")
    }
    // The default is the line-coalesced cp.async (H100, 2026-12-06: 97-101 % of the copy
    // bandwidth from batch 4 at 32k, against 69-77 % for the two-lanes-per-row one), which
    // falls back to it above d = 128.
    #expect(plan(arch: "sm_90a", loader: CUDAKernelTuning().decodeLoader).key.loader == .cpAsyncLines)
  }

  @Test("bulk needs 16-byte aligned rows of whole 16-byte multiples: anything else falls back")
  func alignmentFallback() {
    let aligned: [(address: UInt64, strides: [Int])] = [(0x1000, [1 << 20, 1024, 128, 1]), (0x2000, [1 << 20, 1024, 128, 1])]
    #expect(DecodeLoader.bulk.effective(arch: "sm_90a", headDims: (128, 128), caches: aligned) == .bulk)
    #expect(DecodeLoader.cpAsync.effective(arch: "sm_90a", headDims: (128, 128), caches: aligned) == .cpAsync)
    #expect(DecodeLoader.bulk.effective(arch: "sm_80", headDims: (128, 128), caches: aligned) == .cpAsync)
    #expect(DecodeLoader.bulk.effective(arch: "sm_90a", headDims: (40, 40), caches: aligned) == .bulk)
    #expect(DecodeLoader.bulk.effective(arch: "sm_90a", headDims: (132, 128), caches: aligned) == .cpAsync, "2·d = 264 bytes")
    let misplaced: [[(address: UInt64, strides: [Int])]] = [
      [(0x1008, [1 << 20, 1024, 128, 1]), aligned[1]],  // base 8 bytes off
      [aligned[0], (0x2000, [1 << 20, 1028, 128, 1])],  // an odd row stride
      [aligned[0], (0x2000, [1 << 20, 1024, 132, 1])],  // a head stride of 264 bytes
      [(0x1000, [1 << 20, 1024, 128, 2]), aligned[1]],  // strided columns
    ]
    for caches in misplaced {
      #expect(DecodeLoader.bulk.effective(arch: "sm_90a", headDims: (128, 128), caches: caches) == .cpAsync, "\(caches)")
    }
  }

  @Test("the bulk layout adds one 8-byte barrier per stage per warp past the ring and the merge, and keeps two CTAs per SM")
  func sharedMemoryLayout() {
    for tile in [DecodeTile(warps: 4, stages: 3, mTiles: 1), DecodeTile(warps: 2, stages: 6, mTiles: 2)] {
      for (d, dv) in CUDAKernelCatalog.flashAttention2HeadDims {
        let data = DecodeKey.sharedMemory(headDim: d, headDimV: dv, tile: tile)
        let bulk = DecodeKey.sharedMemory(headDim: d, headDimV: dv, tile: tile, loader: .bulk)
        #expect(bulk == (data + 15) / 16 * 16 + 8 * tile.warps * tile.stages, "d \(d)/\(dv) \(tile)")
      }
    }
    let cp = plan(arch: "sm_90a", loader: .cpAsync).key
    let bulk = plan(arch: "sm_90a", loader: .bulk).key
    #expect(bulk.tile == cp.tile, "the barriers (96 bytes) do not cost the d = 128 tile a stage")
    #expect(TileTables.decodeCTAsPerMultiprocessor(sharedMemoryBytes: bulk.sharedMemoryBytes, arch: "sm_90a") == 2)
    #expect(bulk.program.source.contains("#define FA_BULK 1\n") && cp.program.source.contains("#define FA_BULK 0\n"))
    #expect(bulk.description.contains("bulk") && !cp.description.contains("bulk"))
  }

  @Test("the catalog has every decode key with each loader where it applies: bulk on sm_90a only, lines up to d 128")
  func catalog() {
    for arch in ["sm_80", "sm_90a"] {
      let keys = CUDAKernelCatalog.decodeKeys(arch: arch).compactMap { $0 as? DecodeKey }
      let base = keys.filter { $0.loader == .cpAsync }
      #expect(!base.isEmpty)
      for loader in DecodeLoader.allCases where loader != .cpAsync {
        var expected = base.filter { loader.applies(arch: arch, headDim: $0.headDim, headDimV: $0.headDimV) }
        for index in expected.indices {
          expected[index].loader = loader
          expected[index].tile = TileTables.decodeTile(
            headDim: expected[index].headDim, headDimV: expected[index].headDimV, rows: expected[index].tile.rows,
            arch: arch, loader: loader)
        }
        #expect(Set(keys.filter { $0.loader == loader }) == Set(expected), "\(arch) \(loader)")
      }
    }
    #expect(!CUDAKernelCatalog.decodeKeys(arch: "sm_80").contains { ($0 as? DecodeKey)?.loader == .bulk })
    #expect(!DecodeLoader.cpAsyncLines.applies(arch: "sm_90a", headDim: 256, headDimV: 256))
    #expect(plan(arch: "sm_90a", loader: .cpAsyncLines).key.loader == .cpAsyncLines)
  }

  @Test("the line-coalesced cp.async loader runs everywhere with cp.async's tile")
  func linesLoader() {
    for arch in ["sm_80", "sm_90a"] {
      let lines = plan(arch: arch, loader: .cpAsyncLines).key
      #expect(lines.loader == .cpAsyncLines && lines.tile == plan(arch: arch, loader: .cpAsync).key.tile)
      #expect(lines.sharedMemoryBytes == plan(arch: arch, loader: .cpAsync).key.sharedMemoryBytes)
      #expect(lines.program.source.contains("#define FA_LINES 1\n") && lines.program.source.contains("#define FA_BULK 0\n"))
    }
    let aligned: [(address: UInt64, strides: [Int])] = [(0x1000, [1 << 20, 1024, 128, 1]), (0x2000, [1 << 20, 1024, 128, 1])]
    #expect(DecodeLoader.cpAsyncLines.effective(arch: "sm_80", headDims: (128, 128), caches: aligned) == .cpAsyncLines)
  }

  /// The bulk loader with the tiles the lead's sweep runs (the table's, deeper rings at one or two
  /// CTAs per SM, eight warps), paged and contiguous: no spills, fitting one CTA's shared memory.
  @Test(
    "the bulk loader's sweep tiles compile without spills on sm_90a",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: [nil, DecodeTuning(warps: 2, stages: 6), DecodeTuning(warps: 4, stages: 6), DecodeTuning(warps: 8, stages: 3)])
  func sweepTilesCompile(tuning: DecodeTuning?) throws {
    for paged in [false, true] {
      let key = plan(arch: "sm_90a", loader: .bulk, paged: paged, tuning: tuning).key
      #expect(key.loader == .bulk)
      #expect(key.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: "sm_90a"), "\(key)")
      let kernel = try KernelCompiler.compile(key.program, arch: "sm_90a")
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      #expect(resources.registers * key.threads <= 65536, "\(key): \(resources.registers) registers")
    }
  }
}

/// The other loaders on the GPU (bulk copies on sm_90, line-coalesced cp.async everywhere):
/// the `verify` KV-cache matrix (NaN in every unused slot and page, page sizes 1-256, d 40 with
/// padding columns, windows, splits) through each, and the same seed through each and through
/// the default cp.async loader giving the same errors against the reference (the math is the
/// same; only the bytes' route to shared memory differs), to within 1 % (bit for bit expected).
@Suite("KV cache on CUDA, decode loaders (GPU)")
struct KVCacheLoaderGPUTests {
  @Test(
    "the verify matrix passes through every loader, with the cp.async loader's errors",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: KVCacheMatrix.standard.map(\.name), [DType.float16, .bfloat16])
  func matrix(name: String, dtype: DType) throws {
    let testCase = try #require(KVCacheMatrix.standard.first { $0.name == name })
    let seed = UInt64.random(in: 1...UInt64.max)
    let reference = try CUDABackend(device: 0)
    let cp = Verification(engine: AttentionEngine(backend: reference)).run(testCase, dtype: dtype, seed: seed)
    #expect(cp.passed, "\(cp.summary)")
    for loader in DecodeLoader.allCases where loader != .cpAsync && loader.runs(on: reference.device.arch) {
      let backend = try CUDABackend(device: 0, tuning: CUDAKernelTuning(decodeLoader: loader))
      let other = Verification(engine: AttentionEngine(backend: backend)).run(testCase, dtype: dtype, seed: seed)
      #expect(other.passed, "\(loader): \(other.summary)")
      #expect(other.checks.count == cp.checks.count)
      // Expected bit for bit (same bytes in shared memory, same math); the margin only absorbs
      // a different FMA contraction by ptxas in the other variant. A wrong or stale row moves
      // the error by orders of magnitude.
      func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 0.01 * max(abs(a), abs(b)) + 1e-7 }
      for (mine, theirs) in zip(other.checks, cp.checks) {
        #expect(
          close(mine.relativeL2, theirs.relativeL2) && close(mine.maxAbsolute, theirs.maxAbsolute),
          "\(name) \(mine.name) \(loader): \(mine.relativeL2)/\(mine.maxAbsolute), cp.async \(theirs.relativeL2)/\(theirs.maxAbsolute)")
      }
    }
  }
}
