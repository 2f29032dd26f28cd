import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// Dropout in the Hopper kernels (`FA_DROPOUT`, Kernels/hopper/dropout.cuh): dropout forwards,
/// and backwards at d = 64 and 128, run them on sm_90a unless the tuning asks for the
/// FlashAttention-2 route; the dropout variants compile without spills (NVRTC, no GPU); plain
/// programs carry no trace of the flag; on an H100 both routes match the float64 reference
/// given the same keep mask, forward and backward.
@Suite("Dropout on the Hopper kernels")
struct DropoutHopperTests {
  typealias Views = KernelSelectionTests.Views

  static func shape(d: Int, seqlenQ: Int = 300, seqlenK: Int = 300) -> AttentionShape {
    AttentionShape(batch: 2, seqlenQ: seqlenQ, seqlenK: seqlenK, headsQ: 4, headsKV: 2, headDim: d)
  }

  static let dropout = AttentionDropout(probability: 0.2, seed: 7, offset: 3)

  @Test("dropout forwards run the Hopper kernel on sm_90a, FlashAttention-2 with --dropout-kernels sm80 or elsewhere")
  func forwardSelection() throws {
    for options in [AttentionOptions(dropout: Self.dropout), AttentionOptions(causal: true, dropout: Self.dropout)] {
      for d in [64, 128, 256] {
        let arguments = try Views(Self.shape(d: d)).forward(options)
        guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else {
          Issue.record("dropout at d = \(d) bf16 on sm_90a should run the Hopper forward")
          continue
        }
        #expect(key.dropout && key.program.source.contains("#define FA_DROPOUT 1\n"))
        #expect(KernelSelection.hopperForwardObstacle(arguments, arch: "sm_90a") == nil)
        for (arch, tuning) in [("sm_90a", CUDAKernelTuning.dropoutOnSM80), ("sm_80", CUDAKernelTuning())] {
          guard case let .flashAttention2(key) = KernelSelection.forward(arguments, arch: arch, tuning: tuning) else {
            Issue.record("\(arch) \(tuning.dropoutKernels) should run the FlashAttention-2 forward")
            continue
          }
          #expect(key.dropout)
        }
      }
    }
    // Without dropout the sm80 switch changes nothing.
    let plain = try Views(Self.shape(d: 128)).forward()
    guard case let .hopper(key, _) = KernelSelection.forward(plain, arch: "sm_90a", tuning: .dropoutOnSM80) else {
      Issue.record("a plain call should run the Hopper forward whatever --dropout-kernels says")
      return
    }
    #expect(!key.dropout && !key.program.source.contains("#define FA_DROPOUT"))
  }

  @Test("ALiBi and dropout together: one Hopper key with both flags; either switch to sm80 moves the forward")
  func alibiAndDropout() throws {
    let options = AttentionOptions(
      alibiSlopes: AlibiSlopes(perHead: [0.5, 0.25, 0.125, 0.0625]), dropout: Self.dropout)
    let arguments = try Views(Self.shape(d: 128)).forward(options)
    guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else {
      Issue.record("ALiBi with dropout at d = 128 should run the Hopper forward")
      return
    }
    #expect(key.alibi && key.dropout)
    #expect(HopperForwardKey.dropoutVariants.contains(key), "\(key) is not in the catalog")
    for tuning in [CUDAKernelTuning.dropoutOnSM80, CUDAKernelTuning(alibiKernels: .sm80)] {
      guard case let .flashAttention2(fa2) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: tuning) else {
        Issue.record("\(tuning) should run the FlashAttention-2 forward")
        continue
      }
      #expect(fa2.alibi && fa2.dropout)
    }
  }

  /// What `verify --device cuda --filter dropout` runs on an H100 (aligned device views of each
  /// problem's shape), and this suite's own GPU problems.
  @Test("verify's dropout problems take the Hopper forward on sm_90a by default, FlashAttention-2's with sm80")
  func verifyProblemsRoute() throws {
    let problems = VerificationMatrix.standard.filter { $0.options.activeDropout != nil } + Self.problems
    #expect(problems.count >= 10)
    for problem in problems {
      for dtype in [DType.bfloat16, .float16] {
        let arguments = try Views(problem.shape, dtype: dtype).forward(problem.options)
        guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else {
          Issue.record("\(problem.name) \(dtype): the default route is not the Hopper forward")
          continue
        }
        #expect(key.dropout && key.alibi == (problem.options.alibiSlopes != nil), "\(problem.name)")
        guard case let .flashAttention2(fa2) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .dropoutOnSM80)
        else {
          Issue.record("\(problem.name) \(dtype): --dropout-kernels sm80 took the Hopper forward")
          continue
        }
        #expect(fa2.dropout, "\(problem.name)")
      }
    }
  }

  @Test("the dropout backward runs the Hopper kernels at d = 64 and 128 on sm_90a, FlashAttention-2's at d = 256, with sm80 or elsewhere")
  func backwardSelection() throws {
    for d in [64, 128, 256] {
      for deterministic in [false, true] {
        let options = AttentionOptions(causal: true, deterministic: deterministic, dropout: Self.dropout)
        let arguments = try Views(Self.shape(d: d)).backward(options)
        let plan = KernelSelection.backward(arguments, arch: "sm_90a", tuning: .init())
        switch plan.form {
        case let .hopperFused(keyValue, _):
          // Fused with bulk dQ reductions at d = 64 and 128 (causal: the variants that take it).
          #expect(d != 256 && !deterministic && keyValue.dqBulk, "d \(d) deterministic \(deterministic) ran fused")
          #expect(keyValue.dropout && keyValue.program.source.contains("#define FA_DROPOUT 1\n"))
          #expect(HopperBackwardKey.dqBulkVariants.contains(keyValue), "\(keyValue) is not in the catalog")
        case let .hopperSplit(keyValue, dq):
          #expect(deterministic, "d \(d) ran split")
          #expect(keyValue.dropout && dq.dropout && dq.program.source.contains("#define FA_DROPOUT 1\n"))
          #expect(HopperBackwardKey.dropoutVariants.contains(keyValue), "\(keyValue) is not in the catalog")
          #expect(HopperBackwardDQKey.dropoutVariants.contains(dq), "\(dq) is not in the catalog")
        case let .flashAttention2(keyValue, _):
          #expect(d == 256, "d \(d) should run the Hopper backward")
          #expect(keyValue.dropout)
          #expect(KernelSelection.hopperBackwardObstacle(arguments, arch: "sm_90a")?.contains("dropout") == true)
        }
        for (arch, tuning) in [("sm_90a", CUDAKernelTuning.dropoutOnSM80), ("sm_80", CUDAKernelTuning())] {
          guard case let .flashAttention2(keyValue, _) = KernelSelection.backward(arguments, arch: arch, tuning: tuning).form
          else {
            Issue.record("\(arch) \(tuning.dropoutKernels): the dropout backward should run FlashAttention-2's kernels")
            continue
          }
          #expect(keyValue.dropout)
        }
      }
    }
    // Without dropout the sm80 switch leaves the backward alone.
    let plain = KernelSelection.backward(try Views(Self.shape(d: 128)).backward(), arch: "sm_90a", tuning: .dropoutOnSM80)
    guard case let .hopperFused(keyValue, _) = plain.form else {
      Issue.record("a plain d = 128 backward should run the fused Hopper backward, got \(plain.form)")
      return
    }
    #expect(keyValue.dqBulk && !keyValue.dropout && !keyValue.program.source.contains("#define FA_DROPOUT"))
  }

  @Test("every launchable dropout key is in the catalog; plain Hopper programs do not define FA_DROPOUT")
  func catalog() throws {
    for key in HopperForwardKey.allVariants { #expect(!key.program.source.contains("#define FA_DROPOUT"), "\(key)") }
    for key in HopperBackwardKey.allVariants { #expect(!key.program.source.contains("#define FA_DROPOUT"), "\(key)") }
    for key in HopperBackwardDQKey.allVariants { #expect(!key.program.source.contains("#define FA_DROPOUT"), "\(key)") }
    let backward = HopperBackwardKey.dropoutVariants, dq = HopperBackwardDQKey.dropoutVariants
    #expect(backward.allSatisfy { $0.dropout && $0.headDim != 256 } && dq.allSatisfy { $0.dropout && $0.headDim != 256 })
    #expect(Set(backward.map(\.program)).count == backward.count && Set(dq.map(\.program)).count == dq.count)
    let catalogKeys = CUDAKernelCatalog.keys(arch: "sm_90a")
    #expect(catalogKeys.contains { ($0 as? HopperBackwardKey)?.dropout == true })
    #expect(catalogKeys.contains { ($0 as? HopperBackwardDQKey)?.dropout == true })
    let variants = HopperForwardKey.dropoutVariants
    #expect(variants.allSatisfy { $0.dropout && !$0.dtype.isFloat8 && !$0.varlen })
    #expect(Set(variants.map(\.program)).count == variants.count)
    #expect(CUDAKernelCatalog.keys(arch: "sm_90a").contains { ($0 as? HopperForwardKey)?.dropout == true })
    // Every problem the selection can send to a dropout key: each head dim, dtype, mask, softcap
    // and key length regime, with and without ALiBi.
    for (d, dv) in HopperForwardKey.supportedHeadDims {
      for dtype in [DType.bfloat16, .float16] {
        let alibi = AlibiSlopes(perHead: [0.5, 0.25, 0.125, 0.0625])
        for options in [
          AttentionOptions(dropout: Self.dropout), AttentionOptions(causal: true, dropout: Self.dropout),
          AttentionOptions(window: SlidingWindow(left: 30, right: 5), softcap: 4, dropout: Self.dropout),
          AttentionOptions(causal: true, softcap: 4, alibiSlopes: alibi, dropout: Self.dropout),
          AttentionOptions(alibiSlopes: alibi, dropout: Self.dropout),
        ] {
          for seqlenK in [300, 5000] {
            let shape = AttentionShape(batch: 1, seqlenQ: 200, seqlenK: seqlenK, headsQ: 4, headDim: d, headDimV: dv)
            let arguments = try Views(shape, dtype: dtype).forward(options)
            guard let key = KernelSelection.hopperForwardKey(arguments) else {
              Issue.record("no Hopper key for d \(d)/\(dv) \(dtype)")
              continue
            }
            #expect(variants.contains(key), "\(key) is not in the catalog")
          }
        }
      }
    }
  }

  /// The forward's heaviest dropout variants: softcap and masks at every head dim, the wide
  /// unmasked d = 128 tile (22 chunks: the shared calls with a surplus group), three consumers
  /// at d = 64, and ALiBi with dropout (bf16; fp16 differs only in conversions). The
  /// `flash-attention kernels --filter dropout` report covers every variant.
  @Test(
    "the Hopper dropout variants compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func compiles() throws {
    let forward = HopperForwardKey.dropoutVariants.filter { key in
      key.dtype == .bfloat16
        && (key.softcap || key.consumers == 3 || key.blockN == 176 || key.headDim == 256 || (key.alibi && key.mask == .causal))
    }
    #expect(forward.contains { $0.blockN == 176 } && forward.contains { $0.consumers == 3 })
    for key in forward { try expectCleanHopperCompile(key.program, "\(key)") }
  }

  /// The backward's dropout variants with the most registers live: masked (causal and window)
  /// with and without ALiBi, both kernels, d = 64 and 128 (bf16).
  @Test(
    "the Hopper backward dropout variants compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func backwardCompiles() throws {
    let keyValue = HopperBackwardKey.dropoutVariants.filter { $0.dtype == .bfloat16 && $0.mask != .none }
    let dq = HopperBackwardDQKey.dropoutVariants.filter { $0.dtype == .bfloat16 && $0.mask != .none }
    #expect(!keyValue.isEmpty && !dq.isEmpty)
    for key in keyValue { try expectCleanHopperCompile(key.program, "\(key)") }
    for key in dq { try expectCleanHopperCompile(key.program, "\(key)") }
  }

  /// Problems that reach every dropout variant's path: both mask regimes at d = 64 (three
  /// consumers past 1024 keys), 128 (the 176-key tile past 4096 keys) and 256, windows, GQA,
  /// softcap, ALiBi with dropout, sequences of 1, 7 and 17 rows, seqlen_q ≠ seqlen_k both ways,
  /// a batch slice (firstBatch: the generator's batch coordinate) and p = 0.9.
  static let problems: [AttentionProblem] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    func drop(_ p: Float, _ seed: UInt64, firstBatch: Int = 0) -> AttentionDropout {
      var dropout = AttentionDropout(probability: p, seed: seed, offset: seed &* 3)
      dropout.firstBatch = firstBatch
      return dropout
    }
    return [
      AttentionProblem(
        "hdrop-causal-gqa-d128", S(batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 128),
        O(causal: true, dropout: drop(0.17, 1))),
      AttentionProblem(
        "hdrop-wide-d128", S(batch: 1, seqlenQ: 65, seqlenK: 4500, headsQ: 2, headDim: 128), O(dropout: drop(0.1, 2))),
      AttentionProblem(
        "hdrop-wide-d64", S(batch: 1, seqlenQ: 200, seqlenK: 1100, headsQ: 2, headsKV: 1, headDim: 64),
        O(dropout: drop(0.3, 3))),
      AttentionProblem(
        "hdrop-sq>sk-d64", S(batch: 1, seqlenQ: 1000, seqlenK: 129, headsQ: 2, headDim: 64),
        O(causal: true, dropout: drop(0.5, 4))),
      AttentionProblem(
        "hdrop-window-softcap-d96", S(batch: 1, seqlenQ: 129, seqlenK: 200, headsQ: 2, headDim: 96),
        O(window: SlidingWindow(left: 40, right: 7), softcap: 5, dropout: drop(0.2, 5))),
      AttentionProblem(
        "hdrop-d256-odd", S(batch: 1, seqlenQ: 17, seqlenK: 7, headsQ: 3, headsKV: 1, headDim: 256),
        O(dropout: drop(0.25, 6))),
      AttentionProblem(
        "hdrop-d192x128-one-row", S(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 2, headDim: 192, headDimV: 128),
        O(dropout: drop(0.9, 7))),
      AttentionProblem(
        "hdrop-alibi-causal-d128-slice", S(batch: 2, seqlenQ: 130, seqlenK: 257, headsQ: 2, headDim: 128),
        O(causal: true, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 2, batch: 2), dropout: drop(0.15, 8, firstBatch: 3))),
    ]
  }()

  @Test(
    "both dropout forward routes match the float64 reference given the keep mask (GPU)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: combinations(
      problems + VerificationMatrix.standard.filter { $0.options.activeDropout != nil }, [DType.bfloat16, .float16],
      CUDAKernelTuning.DropoutKernels.allCases))
  func matchesReference(_ problem: AttentionProblem, _ dtype: DType, _ route: CUDAKernelTuning.DropoutKernels) throws {
    var tuning = CUDAKernelTuning()
    tuning.dropoutKernels = route
    let backend = try CUDABackend(device: 0, tuning: tuning)
    // The plans of the same call on aligned device views: on an H100 the hopper route must really
    // run the Hopper forward (and the Hopper backward at d = 64 and 128), the sm80 route never.
    let views = try Views(problem.shape, dtype: dtype)
    let plan = backend.forwardPlan(try views.forward(problem.options))
    let backwardPlan = backend.backwardPlan(try views.backward(problem.options))
    var hopperBackward = true
    if case .flashAttention2 = backwardPlan.form { hopperBackward = false }
    if backend.device.arch == "sm_90a" {
      switch (plan, route) {
      case (.flashAttention2, .hopper): Issue.record("\(problem.name): the dropout forward did not take the Hopper kernel")
      case (.hopper, .sm80): Issue.record("\(problem.name): --dropout-kernels sm80 took the Hopper kernel")
      default: break
      }
      let expected = route == .hopper && HopperBackwardKey.dropoutHeadDims.contains(problem.shape.headDim)
        && problem.options.softcap == 0 && problem.shape.headDim == problem.shape.headDimV
      #expect(hopperBackward == expected, "\(problem.name) \(route): Hopper backward \(hopperBackward)")
    }
    expectPasses(
      problem, dtype: dtype,
      engine: AttentionEngine(backend: backend, selectionReason: "GPU test, dropout kernels \(route.rawValue)"))
  }
}

extension CUDAKernelTuning {
  /// The default tuning with the dropout forward on the FlashAttention-2 kernels.
  static var dropoutOnSM80: CUDAKernelTuning {
    var tuning = CUDAKernelTuning()
    tuning.dropoutKernels = .sm80
    return tuning
  }
}
