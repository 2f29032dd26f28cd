import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// The Hopper fused backward with bulk dQ reductions (`HopperBackwardKey.dqBulk`, `FA_DQ_BULK`):
/// which calls `--hopper-backward-form fused-bulk` reaches, the pieces' shared memory and convert
/// kernel, clean compiles (NVRTC, no GPU), and on an H100 the float64 reference on odd shapes.
@Suite("Hopper backward: dQ by bulk reductions")
struct HopperBackwardBulkTests {
  typealias Views = KernelSelectionTests.Views

  static func tuning(_ form: CUDAKernelTuning.HopperBackwardForm) -> CUDAKernelTuning {
    var tuning = CUDAKernelTuning()
    tuning.hopperBackwardForm = form
    return tuning
  }

  static func shape(d: Int) -> AttentionShape {
    AttentionShape(batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: d)
  }

  /// The convert of the Hopper pieces writes whole 8-column chunks (16-byte loads and stores),
  /// so its grid has a quarter of the column-pair threads; the atomics layout keeps pairs.
  @Test func convertChunks() {
    for d in [64, 128] {
      let convert = FlashAttention2Key.hopperPiecesConvert(headDim: d, dtype: .bfloat16, arch: "sm_90a")
      #expect(convert.convertColumnsPerThread == 8)
      #expect(convert.convertBlocks(rows: 1000, heads: 16) == (1000 * 16 * d / 8 + 255) / 256)
    }
    let pieces = FlashAttention2Key.hopperPiecesConvert(headDim: 64, dtype: .float16, arch: "sm_90a")
    #expect(pieces.convertBlocks(rows: 1, heads: 1) == 1)
    #expect(pieces.convertBlocks(rows: 1 << 20, heads: 64) == 4096)
    let untiled = FlashAttention2Key(
      kind: .backwardConvert, headDim: 128, headDimV: 128, dtype: .bfloat16, masked: false, softcap: false,
      deterministic: false, tile: FlashAttention2Key.untiledConvertTile, arch: "sm_90a")
    #expect(untiled.convertColumnsPerThread == 2)
  }

  /// The key: 64 x d fp32 more shared memory (both warpgroups' pieces), the define only when set,
  /// and only the fused, fixed-length, unwindowed d = 64/128 keys take it.
  @Test func keyAndSharedMemory() throws {
    var key = try #require(HopperBackwardKey(headDim: 128, dtype: .bfloat16, mask: .causal))
    let plain = key.sharedMemoryBytes
    #expect(!key.program.source.contains("#define FA_DQ_BULK 1"))
    #expect(key.acceptsDQBulk)
    key.dqBulk = true
    #expect(key.sharedMemoryBytes == plain + 64 * 128 * 4)
    #expect(key.sharedMemoryBytes <= 227 * 1024)
    #expect(key.program.source.contains("#define FA_DQ_BULK 1\n"))
    #expect(key.description.hasSuffix("dq-bulk"))
    #expect(HopperBackwardKey(headDim: 256, dtype: .bfloat16, mask: .none)?.acceptsDQBulk == false)
    #expect(HopperBackwardKey(headDim: 128, dtype: .bfloat16, mask: .window)?.acceptsDQBulk == true)
    #expect(HopperBackwardKey(headDim: 64, dtype: .float16, mask: .none, skipDQ: true)?.acceptsDQBulk == false)
    var varlen = try #require(HopperBackwardKey(headDim: 64, dtype: .float16, mask: .none))
    varlen.varlen = true
    #expect(!varlen.acceptsDQBulk)
    let variants = HopperBackwardKey.dqBulkVariants
    // d 64/128 x bf16/fp16 x three masks x (plain, ALiBi, dropout, both), and with dqFirst: at
    // d 64 every unwindowed one, at d 128 plain ones and ALiBi alone unmasked.
    #expect(variants.count == 2 * 2 * 3 * 4 + (2 * 2 * 4 + 2 * 2 + 2))
    // Every d 128 variant but dropout without a mask (with and without ALiBi, two dtypes).
    #expect(variants.filter(\.stagesByRow).count == variants.filter { $0.headDim == 128 }.count - 2 * 2)
    #expect(variants.filter(\.stagesByRow).count == 26)
    #expect(variants.filter(\.dqFirst).allSatisfy { $0.mask != .window && ($0.headDim == 64 || !$0.dropout) })
    #expect(variants.filter { $0.dqFirst && $0.headDim == 128 && $0.alibi }.allSatisfy { $0.mask == .none })
    #expect(variants.allSatisfy { $0.dqBulk && $0.acceptsDQBulk })
    #expect(Set(variants.map(\.program)).count == variants.count)
  }

  /// The convert kernel reads the pieces: a 64-row tile of two "warps" side by side (the
  /// warpgroups), the sm80 bulk layout's defines.
  @Test func convertReadsThePieces() {
    let convert = FlashAttention2Key.hopperPiecesConvert(headDim: 128, dtype: .bfloat16, arch: "sm_90a")
    let source = convert.program.source
    for define in ["FA_DQ_BULK 1", "FA_BWD_WM_Q 1", "FA_BM 64", "FA_WARPS 2", "FA_D 128"] {
      #expect(source.contains("#define \(define)\n"), "missing \(define)")
    }
    #expect(convert.program.entry == "flash_backward_convert_dq")
    #expect(convert != FlashAttention2Key.hopperPiecesConvert(headDim: 64, dtype: .bfloat16, arch: "sm_90a"))
  }

  /// `fused-bulk` reaches plain d = 64/128 calls without a window; the deterministic mode,
  /// ALiBi, dropout, windows and d = 256 keep the table's form; `split` and `fused` force theirs.
  @Test func selection() throws {
    func form(_ d: Int, _ options: AttentionOptions, _ tuning: CUDAKernelTuning) throws -> BackwardKernelPlan.Form {
      KernelSelection.backward(try Views(Self.shape(d: d)).backward(options), arch: "sm_90a", tuning: tuning).form
    }
    for d in [64, 128] {
      guard case let .hopperFused(keyValue, convert) = try form(d, AttentionOptions(causal: true), Self.tuning(.fusedBulk)) else {
        Issue.record("d \(d): fused-bulk should run the fused kernel")
        continue
      }
      #expect(keyValue.dqBulk && convert.hopperPieces && convert.headDim == d)
      #expect(HopperBackwardKey.dqBulkVariants.contains(keyValue), "\(keyValue) is not in the catalog")
      let layout = BackwardScratch.Layout(plan: KernelSelection.backward(
        try Views(Self.shape(d: d)).backward(AttentionOptions(causal: true)), arch: "sm_90a", tuning: Self.tuning(.fusedBulk)),
        shape: Self.shape(d: d))
      #expect(layout.accumulatorFloats == 2 * 4 * 320 * d)  // 300 rows -> 5 blocks of 64
    }
    // The table: plain calls issue dQ's GEMM first.
    for d in [64, 128] {
      if case let .hopperFused(keyValue, _) = try form(d, AttentionOptions(causal: true), CUDAKernelTuning()) {
        #expect(keyValue.dqBulk && keyValue.dqFirst && HopperBackwardKey.dqBulkVariants.contains(keyValue))
      } else {
        Issue.record("d \(d): the table should run the fused kernel")
      }
    }
    // The table's forms where fused-bulk does not apply.
    if case .hopperSplit = try form(128, AttentionOptions(causal: true, deterministic: true), Self.tuning(.fusedBulk)) {} else {
      Issue.record("deterministic d 128 should stay split")
    }
    let windowForm = try form(128, AttentionOptions(window: SlidingWindow(left: 30, right: 7)), CUDAKernelTuning())
    if case let .hopperFused(keyValue, _) = windowForm {
      #expect(keyValue.dqBulk && !keyValue.dqFirst && keyValue.stagesByRow)
    } else {
      Issue.record("a window at d 128 should run fused with bulk reductions, got \(windowForm)")
    }
    if case .hopperSplit = try form(256, AttentionOptions(causal: true), Self.tuning(.fusedBulk)) {} else {
      Issue.record("d 256 should keep the table's split form")
    }
    // ALiBi and dropout take it too, with dQ first where that variant does not spill (d = 64;
    // ALiBi alone unmasked at d = 128).
    let slopes = VerificationMatrix.alibiSlopes(heads: 4, batch: nil)
    let dropout = AttentionDropout(probability: 0.1, seed: 1, offset: 0)
    for (d, options, first) in [
      (128, AttentionOptions(causal: true, alibiSlopes: slopes), false), (128, AttentionOptions(dropout: dropout), false),
      (128, AttentionOptions(alibiSlopes: slopes), true), (64, AttentionOptions(alibiSlopes: slopes, dropout: dropout), true),
      (64, AttentionOptions(causal: true, dropout: dropout), true),
    ] {
      let plan = try form(d, options, CUDAKernelTuning())
      if case let .hopperFused(keyValue, convert) = plan {
        #expect(keyValue.dqBulk && convert.hopperPieces && keyValue.alibi == (options.alibiSlopes != nil))
        #expect(keyValue.dqFirst == first, "d \(d) \(options): dQ first \(first)")
        #expect(HopperBackwardKey.dqBulkVariants.contains(keyValue), "\(keyValue) is not in the catalog")
      } else {
        Issue.record("d \(d) \(options) should run fused with bulk reductions, got \(plan)")
      }
    }
    let alibiForm = try form(128, AttentionOptions(alibiSlopes: slopes), CUDAKernelTuning())
    if case let .hopperFused(keyValue, _) = alibiForm { #expect(keyValue.dqBulk && keyValue.alibi && keyValue.stagesByRow) } else {
      Issue.record("ALiBi at d 128 without a mask should run fused with bulk reductions, got \(alibiForm)")
    }
    // The other forms on request.
    if case let .hopperFused(keyValue, convert) = try form(128, AttentionOptions(causal: true), Self.tuning(.fused)) {
      #expect(!keyValue.dqBulk && !convert.hopperPieces)
    } else {
      Issue.record("fused should run the fused kernel with atomics at d 128")
    }
    if case .hopperSplit = try form(64, AttentionOptions(causal: true), Self.tuning(.split)) {} else {
      Issue.record("split should run the split form at d 64")
    }
    if case let .hopperFused(keyValue, _) = try form(128, AttentionOptions(causal: true), Self.tuning(.fusedBulkDQFirst)) {
      #expect(keyValue.dqBulk && keyValue.dqFirst && keyValue.program.source.contains("#define FA_DQ_FIRST 1\n"))
    } else {
      Issue.record("fused-bulk-dq-first should run the fused kernel with dQ first")
    }
    // Asked for where that order spills, the kernel keeps the plain order (a catalog variant).
    for options in [
      AttentionOptions(causal: true, alibiSlopes: slopes), AttentionOptions(dropout: dropout),
      AttentionOptions(window: SlidingWindow(left: 30, right: 7)),
    ] {
      if case let .hopperFused(keyValue, _) = try form(128, options, Self.tuning(.fusedBulkDQFirst)) {
        #expect(keyValue.dqBulk && !keyValue.dqFirst && HopperBackwardKey.dqBulkVariants.contains(keyValue), "\(options)")
      } else {
        Issue.record("fused-bulk-dq-first with \(options) should run the fused kernel with bulk reductions")
      }
    }
  }

  @Test(
    "the bulk-reduction variants and their convert kernels compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func compiles() throws {
    for key in HopperBackwardKey.dqBulkVariants { try expectCleanHopperCompile(key.program, "\(key)") }
    for d in HopperBackwardKey.dqBulkHeadDims {
      let convert = FlashAttention2Key.hopperPiecesConvert(headDim: d, dtype: .float16, arch: "sm_90a")
      try expectCleanHopperCompile(convert.program, "\(convert)")
    }
  }

  /// Odd lengths around the 64-row pieces (1, 17, 129, 1000), seqlen_q ≠ seqlen_k both ways,
  /// GQA and MQA, causal and not, windows and ALiBi at d = 128.
  static let problems: [AttentionProblem] = {
    typealias S = AttentionShape
    return [
      AttentionProblem("bulk-1x1000-d128", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 2, headDim: 128)),
      AttentionProblem(
        "bulk-causal-gqa-129-d128", S(batch: 2, seqlenQ: 129, seqlenK: 129, headsQ: 4, headsKV: 2, headDim: 128),
        AttentionOptions(causal: true)),
      AttentionProblem("bulk-1000x17-d64", S(batch: 1, seqlenQ: 1000, seqlenK: 17, headsQ: 3, headsKV: 1, headDim: 64)),
      AttentionProblem(
        "bulk-causal-17x1000-d64", S(batch: 3, seqlenQ: 17, seqlenK: 1000, headsQ: 2, headDim: 64),
        AttentionOptions(causal: true)),
      AttentionProblem(
        "bulk-causal-1000-mqa-d128", S(batch: 1, seqlenQ: 1000, seqlenK: 1000, headsQ: 4, headsKV: 1, headDim: 128),
        AttentionOptions(causal: true)),
      // The d = 128 variants that stage dQ by row (stagesByRow): two-sided and causal windows,
      // ALiBi alone without a mask.
      AttentionProblem(
        "bulk-window-37-9-gqa-129x300-d128", S(batch: 2, seqlenQ: 129, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 128),
        AttentionOptions(window: SlidingWindow(left: 37, right: 9))),
      AttentionProblem(
        "bulk-window-100-causal-1000-d128", S(batch: 1, seqlenQ: 1000, seqlenK: 1000, headsQ: 2, headDim: 128),
        AttentionOptions(causal: true, window: SlidingWindow(left: 100, right: 0))),
      AttentionProblem(
        "bulk-alibi-mqa-1000x129-d128", S(batch: 1, seqlenQ: 1000, seqlenK: 129, headsQ: 3, headsKV: 1, headDim: 128),
        AttentionOptions(alibiSlopes: VerificationMatrix.alibiSlopes(heads: 3))),
    ]
  }()

  @Test(
    "fused-bulk matches the float64 reference (GPU)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: problems, [DType.bfloat16, .float16])
  func matchesReference(_ problem: AttentionProblem, _ dtype: DType) throws {
    let backend = try CUDABackend(device: 0, tuning: Self.tuning(.fusedBulk))
    if backend.device.arch == "sm_90a" {
      let plan = backend.backwardPlan(try Views(problem.shape, dtype: dtype).backward(problem.options))
      guard case let .hopperFused(keyValue, _) = plan.form, keyValue.dqBulk else {
        Issue.record("\(problem.name): fused-bulk did not run the bulk kernel (\(plan.form))")
        return
      }
    }
    expectPasses(problem, dtype: dtype, engine: AttentionEngine(backend: backend, selectionReason: "GPU test, fused-bulk"))
  }
}
