import Testing
import FlashAttentionCore
@testable import FlashAttentionCUDA

/// True when NVRTC can be loaded here (CI installs it from PyPI: nvidia-cuda-nvrtc) and gives a
/// ptxas resource report, which the compile tests read (registers, spills). The H100 device's
/// NVRTC returns an empty compile log, so there the compile tests skip instead of failing on a
/// missing report (2026-12-06); the PyPI NVRTC 13.0.88 that CI uses reports.
let nvrtcAvailable: Bool = {
  guard (try? KernelCompiler.nvrtcVersion()) != nil else { return false }
  let probe = CUDAProgram(
    entry: "fa_report_probe", source: "extern \"C\" __global__ void fa_report_probe(float* x) { x[threadIdx.x] = 1.f; }")
  return (try? KernelCompiler.compile(probe, arch: "sm_80"))?.resources != nil
}()

@Suite("Kernel compilation (NVRTC, no GPU)")
struct KernelCompileTests {
  @Test(
    "every kernel variant compiles without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_80", "sm_90a"])
  func catalogCompiles(arch: String) throws {
    for key in CUDAKernelCatalog.flashAttention2Keys(arch: arch) {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      #expect(resources.registers <= 255)
      #expect(kernel.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "\(key): CUBIN is not an ELF file")
    }
  }

  /// sm_86 and sm_89 have less shared memory per block than sm_80, so the backward picks
  /// smaller fallback tiles there: those variants need their own spill check.
  @Test(
    "the backward's fallback tiles for sm_86 and sm_89 compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_86", "sm_89"])
  func backwardFallbackTilesCompile(arch: String) throws {
    let fallbacks = CUDAKernelCatalog.flashAttention2Keys(arch: arch).filter {
      $0.kind == .backwardKeyValue
        && $0.tile != FlashAttention2Key.backwardTile(headDim: $0.headDim, headDimV: $0.headDimV, arch: "sm_80")
    }
    #expect(!fallbacks.isEmpty, "no backward variant on \(arch) differs from sm_80's; this test checks nothing")
    for key in fallbacks {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
    }
  }

  @Test(
    "a compile error carries NVRTC's log",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found"))
  func compileErrorHasLog() {
    let program = CUDAProgram(entry: "broken", source: "extern \"C\" __global__ void broken() { undeclared_name(); }")
    do {
      _ = try KernelCompiler.compile(program, arch: "sm_80")
      Issue.record("a broken kernel compiled")
    } catch {
      guard case let .compilation(kernel, log) = error else {
        Issue.record("expected .compilation, got \(error)")
        return
      }
      #expect(kernel.contains("broken"))
      #expect(log.contains("undeclared_name"))
    }
  }

  @Test(
    "the disk cache returns what it stored",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found"))
  func diskCacheRoundTrip() throws {
    let directory = "/tmp/flash-attention-cache-test-\(UInt32.random(in: 0...UInt32.max))"
    let cache = KernelDiskCache(directory: directory)
    let program = CUDAProgram(entry: "tiny", source: "extern \"C\" __global__ void tiny(float* x) { x[threadIdx.x] = 1.f; }")
    let nvrtc = try KernelCompiler.nvrtcVersion()
    #expect(cache.load(program, arch: "sm_80", nvrtc: nvrtc) == nil)
    let kernel = try KernelCompiler.compile(program, arch: "sm_80")
    cache.store(kernel, program: program, nvrtc: nvrtc)
    #expect(cache.load(program, arch: "sm_80", nvrtc: nvrtc) == kernel.cubin)
    // Another architecture or NVRTC version is another entry.
    #expect(cache.load(program, arch: "sm_90a", nvrtc: nvrtc) == nil)
    #expect(cache.load(program, arch: "sm_80", nvrtc: (nvrtc.major, nvrtc.minor + 1)) == nil)
  }
}

@Suite("Kernel keys and resources (no NVRTC)")
struct KernelKeyTests {
  /// The preprocess's geometry matches the kernel's macros: a row over the next power of two of
  /// its 8-column chunks, rows per warp a multiple of one warp-wide load's rows, and a grid that
  /// covers every row.
  @Test("the preprocess splits rows into 8-column chunks and its grid covers every row")
  func preprocessGeometry() {
    let expected = [8: 1, 16: 2, 40: 8, 64: 8, 96: 16, 128: 16, 160: 32, 192: 32, 256: 32]
    for (dv, lanes) in expected {
      #expect(FlashAttention2Key.preprocessLanesPerRow(headDimV: dv) == lanes, "d_v \(dv)")
      let rows = FlashAttention2Key.preprocessRowsPerWarp(headDimV: dv)
      #expect(rows % (32 / lanes) == 0 && rows <= 32, "d_v \(dv): \(rows) rows a warp")
      for seqlen in [1, 7, 17, 129, 1000] {
        let (x, y, z) = FlashAttention2Key.preprocessGrid(rows: seqlen, heads: 3, batch: 2, headDimV: dv)
        #expect(x * FlashAttention2Key.preprocessRowsPerBlock(headDimV: dv) >= seqlen && y == 3 && z == 2)
        #expect((x - 1) * FlashAttention2Key.preprocessRowsPerBlock(headDimV: dv) < seqlen)
      }
    }
    #expect(FlashAttention2Key.preprocessRowsPerWarp(headDimV: 128) == 8)
    #expect(FlashAttention2Key.preprocessRowsPerWarp(headDimV: 256) == 4)
    #expect(FlashAttention2Key.preprocessRowsPerWarp(headDimV: 8) == 32)
  }

  @Test("ptxas verbose lines are parsed")
  func parsesResources() throws {
    let log = """
      ptxas info    : Compiling entry function 'flash_forward' for 'sm_90a'
      ptxas info    : Function properties for flash_forward
      ptxas         .     24 bytes stack frame, 16 bytes spill stores, 12 bytes spill loads
      ptxas info    : Used 168 registers, used 1 barriers, 1024 bytes smem, 532 bytes cmem[0]
      """
    let resources = try #require(KernelCompiler.parseResources(log: log))
    #expect(resources == KernelResources(registers: 168, staticSharedMemory: 1024, stackFrame: 24, spillStores: 16, spillLoads: 12))
    #expect(resources.spills)
    #expect(KernelCompiler.parseResources(log: "no report") == nil)
    // A program with several kernels: the entry's own lines, not the last kernel's.
    let two = """
      ptxas info    : Compiling entry function 'first' for 'sm_80'
      ptxas info    : Used 40 registers, used 0 barriers, 0 bytes smem
      ptxas info    : Compiling entry function 'second' for 'sm_80'
      ptxas info    : Used 64 registers, used 1 barriers, 8704 bytes smem
      """
    #expect(KernelCompiler.parseResources(log: two, entry: "first")?.registers == 40)
    #expect(KernelCompiler.parseResources(log: two, entry: "second")?.staticSharedMemory == 8704)
  }

  @Test("every catalog key fits the Hopper shared-memory limit and its tile shape")
  func tilesAreConsistent() {
    for key in CUDAKernelCatalog.flashAttention2Keys(arch: "sm_90a", exhaustive: true) {
      #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key)")
      switch key.kind {
      case .forward:
        #expect(key.tile.blockM % (16 * key.tile.warps) == 0, "\(key)")
        // Q fragments live in registers only with one m16 tile per warp.
        #expect(!key.tile.qInRegisters || key.tile.blockM == 16 * key.tile.warps, "\(key)")
      case .backwardKeyValue:
        #expect(FlashAttention2Key.backwardTileFits(key.tile, headDim: key.headDim, headDimV: key.headDimV, arch: key.arch), "\(key)")
      case .backwardPreprocess, .backwardConvert:
        break
      }
    }
  }

  @Test("the program depends on every field of the key")
  func programsDiffer() {
    let base = FlashAttention2Key.make(
      kind: .forward, headDim: 64, headDimV: 64, dtype: .float16, masked: false, softcap: false,
      deterministic: false, arch: "sm_80")
    var variants = [base]
    var masked = base
    masked.masked = true
    variants.append(masked)
    var softcap = base
    softcap.softcap = true
    variants.append(softcap)
    var bf16 = base
    bf16.dtype = .bfloat16
    variants.append(bf16)
    var wide = base
    wide.headDimV = 128
    variants.append(wide)
    #expect(Set(variants.map(\.program)).count == variants.count)
  }

  @Test("backward warp grids reproduce FlashAttention-2's sm80 layouts")
  func backwardWarpGrids() {
    // (d, expected FA_BWD_WM_S, FA_BWD_WN_KV, FA_BWD_WM_Q): FA2's AtomLayoutMSdP, NdKV, MdQ.
    for (d, s, kv, q) in [(64, 4, 4, 4), (128, 2, 4, 2), (256, 4, 2, 2)] {
      let key = FlashAttention2Key.make(
        kind: .backwardKeyValue, headDim: d, headDimV: d, dtype: .bfloat16, masked: false, softcap: false,
        deterministic: false, arch: "sm_90a")
      let source = key.program.source
      #expect(source.contains("#define FA_BWD_WM_S \(s)\n"), "d=\(d)")
      #expect(source.contains("#define FA_BWD_WN_KV \(kv)\n"), "d=\(d)")
      #expect(source.contains("#define FA_BWD_WM_Q \(q)\n"), "d=\(d)")
    }
  }

  @Test("the backward's dQ reduction: bulk pieces from sm_90 on, atomics before; convert follows")
  func backwardPlans() {
    func kv(_ d: Int, _ dv: Int, _ arch: String) -> FlashAttention2Key {
      FlashAttention2Key.make(
        kind: .backwardKeyValue, headDim: d, headDimV: dv, dtype: .bfloat16, masked: true, softcap: false,
        deterministic: false, arch: arch)
    }
    // The H100 plans measured in docs/perf-notes/cuda-sm80.md (runs 8 and 9).
    #expect(kv(64, 64, "sm_90a").backwardPlan == .init(reduction: .bulk, buffers: 2, unroll: 2))
    #expect(kv(128, 128, "sm_90a").backwardPlan == .init(reduction: .bulk, buffers: 2, unroll: 2))
    #expect(kv(256, 256, "sm_90a").backwardPlan == .init(reduction: .bulkInQueryBuffer, buffers: 2, unroll: 2))
    for arch in ["sm_80", "sm_86", "sm_89"] {
      for (d, dv) in CUDAKernelCatalog.flashAttention2HeadDims {
        #expect(kv(d, dv, arch).backwardPlan.reduction == .atomics, "\(arch) d=\(d)")
      }
    }
    for (d, dv) in CUDAKernelCatalog.flashAttention2HeadDims {
      let key = kv(d, dv, "sm_90a")
      // Every sm_90 head dim gets a bulk plan, and its shared memory fits.
      #expect(key.backwardPlan.reduction != .atomics, "d=\(d) dv=\(dv)")
      #expect(key.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: "sm_90a"), "d=\(d) dv=\(dv)")
      // The conversion kernel reads the accumulator in the key/value kernel's pieces.
      let convert = FlashAttention2Key.make(
        kind: .backwardConvert, headDim: d, headDimV: dv, dtype: .bfloat16, masked: true, softcap: false,
        deterministic: false, arch: "sm_90a")
      #expect(convert.tile == key.tile, "d=\(d)")
      #expect(convert.program.source.contains("#define FA_DQ_BULK \(key.backwardPlan.reduction.rawValue)\n"))
      // Whole padded query blocks: at least one float per dQ element, 7 rows -> one block.
      #expect(key.dqAccumulatorFloats(batch: 2, seqlenQ: 7, headsQ: 3) == 2 * 3 * key.tile.blockM * ((d + 31) / 32 * 32))
    }
    let sm80 = FlashAttention2Key.make(
      kind: .backwardConvert, headDim: 64, headDimV: 64, dtype: .bfloat16, masked: false, softcap: false,
      deterministic: false, arch: "sm_80")
    #expect(sm80.tile.blockM == 0 && sm80.program.source.contains("#define FA_DQ_BULK 0\n"))
    #expect(kv(64, 64, "sm_80").dqAccumulatorFloats(batch: 2, seqlenQ: 7, headsQ: 3) == 2 * 7 * 3 * 64)
  }

  @Test("the backward tile fits every architecture's shared memory")
  func backwardTilesFit() {
    for arch in ["sm_80", "sm_86", "sm_89", "sm_90a"] {
      for (d, dv) in CUDAKernelCatalog.flashAttention2HeadDims {
        let tile = FlashAttention2Key.backwardTile(headDim: d, headDimV: dv, arch: arch)
        #expect(FlashAttention2Key.backwardTileFits(tile, headDim: d, headDimV: dv, arch: arch), "\(arch) d=\(d) dv=\(dv) \(tile)")
      }
    }
  }

  @Test("head dims: multiples of 8 up to 256")
  func headDims() {
    #expect(FlashAttention2Key.supportsHeadDim(8))
    #expect(FlashAttention2Key.supportsHeadDim(200))
    #expect(FlashAttention2Key.supportsHeadDim(256))
    #expect(!FlashAttention2Key.supportsHeadDim(12))
    #expect(!FlashAttention2Key.supportsHeadDim(264))
  }

  @Test("the stable hash is stable and separates fields")
  func stableHash() {
    var a = StableHash()
    a.combine("ab")
    a.combine("c")
    var b = StableHash()
    b.combine("a")
    b.combine("bc")
    var c = StableHash()
    c.combine("ab")
    c.combine("c")
    #expect(a.hexDigest != b.hexDigest)
    #expect(a.hexDigest == c.hexDigest)
    #expect(a.hexDigest.count == 32)
  }
}
