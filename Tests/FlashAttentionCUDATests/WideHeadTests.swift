import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// Heads past 256 (d up to 512): which kernels run them, how the forward splits V, and what the
/// checks refuse (no GPU; `GPUAttentionTests.problems` runs them against the float64 reference).
@Suite("Heads past 256 (no GPU)")
struct WideHeadTests {
  typealias Views = KernelSelectionTests.Views

  func shape(d: Int, dv: Int? = nil) -> AttentionShape {
    AttentionShape(batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: d, headDimV: dv ?? d)
  }

  @Test("the forward's value chunks cover d_v exactly, at most 256 columns each, multiples of 8 but the last")
  func valueChunks() {
    func widths(_ dv: Int) -> [Int] { FlashAttention2Key.forwardValueChunks(headDimV: dv).map(\.width) }
    #expect(widths(8) == [8])
    #expect(widths(256) == [256])
    #expect(widths(264) == [136, 128])
    #expect(widths(320) == [160, 160])
    #expect(widths(512) == [256, 256])
    for dv in stride(from: 8, through: FlashAttention2Key.maxWideHeadDim, by: 8) {
      let chunks = FlashAttention2Key.forwardValueChunks(headDimV: dv)
      var next = 0
      for chunk in chunks {
        #expect(chunk.offset == next && chunk.width > 0 && chunk.width <= 256 && chunk.width % 8 == 0, "d_v \(dv)")
        next += chunk.width
      }
      #expect(next == dv, "d_v \(dv)")
      #expect(chunks.count == (dv + 255) / 256, "d_v \(dv)")
    }
  }

  @Test("d = 512 runs the FlashAttention-2 kernels on sm_90a and sm_80: the forward in value chunks, the backward on 32 x 32")
  func selection() throws {
    let views = try Views(shape(d: 512))
    for arch in ["sm_90a", "sm_80"] {
      guard case let .flashAttention2(forward) = KernelSelection.forward(try views.forward(), arch: arch, tuning: .init())
      else {
        Issue.record("\(arch): d = 512 should run the FlashAttention-2 forward")
        continue
      }
      // One launch, two groups of 4 warps, each holding O for 256 columns.
      #expect(forward.headDim == 512 && forward.headDimV == 512 && forward.valueGroups == 2, "\(arch)")
      #expect(forward.tile.blockM == 64 && forward.tile.warps == 4 && forward.threads == 256, "\(arch)")
      #expect(forward.program.source.contains("#define FA_VGROUPS 2\n"), "\(arch)")
      #expect(forward.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: arch), "\(arch)")
      // `--wide-value chunks`: one launch per 256 columns, the key the first chunk's.
      var tuning = CUDAKernelTuning()
      tuning.wideValue = .chunks
      guard case let .flashAttention2(chunk) = KernelSelection.forward(try views.forward(), arch: arch, tuning: tuning)
      else {
        Issue.record("\(arch): d = 512 in chunks should run the FlashAttention-2 forward")
        continue
      }
      #expect(chunk.headDimV == 256 && chunk.valueGroups == 1 && chunk.threads == 128, "\(arch)")
      // The launches: the grouped key once over every column; the chunk key at columns 0 and 256.
      let grouped = forward.forwardLaunches(headDimV: 512)
      #expect(grouped.count == 1 && grouped[0].key == forward && grouped[0].offset == 0, "\(arch)")
      let chunked = chunk.forwardLaunches(headDimV: 512)
      #expect(chunked.map(\.offset) == [0, 256] && chunked.allSatisfy { $0.key == chunk }, "\(arch)")
      #expect(!chunk.program.source.contains("#define FA_VGROUPS 2"), "\(arch)")
      #expect(chunk.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: arch), "\(arch)")
      let backward = KernelSelection.backward(try views.backward(AttentionOptions(causal: true)), arch: arch, tuning: .init())
      guard case let .flashAttention2(keyValue, convert) = backward.form else {
        Issue.record("\(arch): d = 512 should run the FlashAttention-2 backward")
        continue
      }
      #expect(keyValue.tile == AttentionTile(blockM: 32, blockN: 32, warps: 8, qInRegisters: false), "\(arch)")
      #expect(keyValue.backwardPlan.unroll == 1 && keyValue.headDimV == 512, "\(arch)")
      #expect(keyValue.sharedMemoryBytes <= FlashAttention2Key.sharedMemoryLimit(arch: arch), "\(arch)")
      #expect(backward.preprocess.headDimV == 512 && convert.headDim == 512, "\(arch)")
    }
    // The Hopper kernels stop at 256 (a d = 512 key does not exist there).
    #expect(KernelSelection.hopperForwardObstacle(try views.forward(), arch: "sm_90a") != nil)
    #expect(KernelSelection.hopperBackwardObstacle(try views.backward(), arch: "sm_90a") != nil)
  }

  @Test("wide heads are taken where the backward's tile fits: sm_80 and sm_90, not sm_86/89")
  func architectures() {
    #expect(FlashAttention2Key.takesWideHeads(arch: "sm_90a"))
    #expect(FlashAttention2Key.takesWideHeads(arch: "sm_80"))
    #expect(!FlashAttention2Key.takesWideHeads(arch: "sm_86"))
    #expect(!FlashAttention2Key.takesWideHeads(arch: "sm_89"))
  }

  @Test("the checks: 512 for the fixed-length passes, 256 elsewhere, 520 nowhere, each refusal saying why")
  func checks() throws {
    let wide = shape(d: 512)
    let wideLimit = FlashAttention2Key.maxWideHeadDim
    #expect(throws: Never.self) {
      try CUDACallChecks.problem(wide, dtype: .bfloat16, backend: "cuda:0", maxHeadDim: wideLimit)
    }
    #expect(throws: Never.self) {
      try CUDACallChecks.problem(shape(d: 320, dv: 264), dtype: .float16, backend: "cuda:0", maxHeadDim: wideLimit)
    }
    func refusal(_ shape: AttentionShape, maxHeadDim: Int) -> String? {
      do {
        try CUDACallChecks.problem(shape, dtype: .bfloat16, backend: "cuda:0", maxHeadDim: maxHeadDim)
        return nil
      } catch {
        guard case let .unsupported(_, feature) = error else { return "wrong error \(error)" }
        return feature
      }
    }
    // The default (varlen, KV cache) names where 512 is taken.
    let narrow = try #require(refusal(wide, maxHeadDim: FlashAttention2Key.maxHeadDim))
    #expect(narrow.contains("head_dim = 512") && narrow.contains("up to 256") && narrow.contains("fixed-length"))
    let tooWide = try #require(refusal(shape(d: 520), maxHeadDim: wideLimit))
    #expect(tooWide.contains("head_dim = 520") && tooWide.contains("up to 512"))
    #expect(refusal(shape(d: 64, dv: 516), maxHeadDim: wideLimit) != nil)
  }

  @Test("the catalog compiles the wide keys on sm_90a and sm_80 (forward chunks included), none on sm_86")
  func catalog() {
    func wideKeys(_ arch: String) -> [FlashAttention2Key] {
      CUDAKernelCatalog.flashAttention2Keys(arch: arch).filter { $0.headDim > 256 || $0.headDimV > 256 }
    }
    for arch in ["sm_90a", "sm_80"] {
      // d_v 264: the grouped key (two groups of 144 padded columns) and the chunks' (136, 128).
      let forwards = CUDAKernelCatalog.flashAttention2Keys(arch: arch).filter { $0.kind == .forward && $0.headDim == 320 }
      #expect(Set(forwards.map(\.headDimV)) == [264, 136, 128], "\(arch)")
      #expect(forwards.allSatisfy { ($0.headDimV == 264) == ($0.valueGroups == 2) }, "\(arch)")
      #expect(!wideKeys(arch).isEmpty, "\(arch)")
    }
    #expect(wideKeys("sm_86").isEmpty)
    // Varlen keys stay at 256.
    #expect(
      CUDAKernelCatalog.varlenKeys(arch: "sm_90a").compactMap { $0 as? FlashAttention2Key }
        .allSatisfy { max($0.headDim, $0.headDimV) <= 256 })
  }

  /// The wide problems of `GPUAttentionTests.problems` (which runs them in value groups).
  static let wideProblems = GPUAttentionTests.problems.filter { max($0.shape.headDim, $0.shape.headDimV) > 256 }

  @Test(
    "heads past 256 in value chunks (one launch per 256 columns) match the float64 reference",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: wideProblems, GPUAttentionTests.dtypes)
  func chunksOnGPU(_ problem: AttentionProblem, _ dtype: DType) throws {
    var tuning = CUDAKernelTuning()
    tuning.wideValue = .chunks
    let engine = AttentionEngine(
      backend: try CUDABackend(device: 0, tuning: tuning), selectionReason: "GPU test, wide V in chunks")
    expectPasses(problem, dtype: dtype, engine: engine)
  }
}
