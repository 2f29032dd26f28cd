import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// ALiBi in the Hopper kernels (`FA_ALIBI`): calls with slopes run them on sm_90a unless the
/// tuning asks for the FlashAttention-2 route; the ALiBi variants compile without spills (NVRTC,
/// no GPU); plain programs carry no trace of the flag; on an H100 both routes match the float64
/// reference.
@Suite("ALiBi on the Hopper kernels")
struct AlibiHopperTests {
  typealias Views = KernelSelectionTests.Views

  static func shape(d: Int, seqlenQ: Int = 300, seqlenK: Int = 300) -> AttentionShape {
    AttentionShape(batch: 2, seqlenQ: seqlenQ, seqlenK: seqlenK, headsQ: 4, headsKV: 2, headDim: d)
  }

  static let slopes = AlibiSlopes(batch: 2, values: (0..<8).map { Float($0 + 1) / 8 })

  @Test("ALiBi calls run the Hopper forward on sm_90a, FlashAttention-2 with --alibi-kernels sm80 or elsewhere")
  func forwardSelection() throws {
    for mask in [AttentionOptions(alibiSlopes: Self.slopes), AttentionOptions(causal: true, alibiSlopes: Self.slopes)] {
      let arguments = try Views(Self.shape(d: 128)).forward(mask)
      guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else {
        Issue.record("ALiBi at d = 128 bf16 on sm_90a should run the Hopper forward")
        continue
      }
      #expect(key.alibi && key.program.source.contains("#define FA_ALIBI 1\n"))
      #expect(KernelSelection.hopperForwardObstacle(arguments, arch: "sm_90a") == nil)
      for (arch, tuning) in [("sm_90a", CUDAKernelTuning(alibiKernels: .sm80)), ("sm_80", CUDAKernelTuning())] {
        guard case let .flashAttention2(key) = KernelSelection.forward(arguments, arch: arch, tuning: tuning) else {
          Issue.record("\(arch) \(tuning.alibiKernels) should run the FlashAttention-2 forward")
          continue
        }
        #expect(key.alibi)
      }
    }
    // Without slopes the sm80 switch changes nothing.
    let plain = try Views(Self.shape(d: 128)).forward()
    guard case let .hopper(key, _) = KernelSelection.forward(plain, arch: "sm_90a", tuning: CUDAKernelTuning(alibiKernels: .sm80))
    else {
      Issue.record("a plain call should run the Hopper forward whatever --alibi-kernels says")
      return
    }
    #expect(!key.alibi && !key.program.source.contains("#define FA_ALIBI"))
  }

  @Test("ALiBi calls run the Hopper backward (fused and split) on sm_90a; softcap stays on FlashAttention-2")
  func backwardSelection() throws {
    let split = KernelSelection.backward(
      try Views(Self.shape(d: 128, seqlenQ: 129, seqlenK: 1000)).backward(
        AttentionOptions(deterministic: true, alibiSlopes: Self.slopes)),
      arch: "sm_90a", tuning: .init())
    guard case let .hopperSplit(keyValue, dq) = split.form else {
      Issue.record("d = 128 ALiBi should run the split Hopper backward, got \(split.form)")
      return
    }
    #expect(keyValue.alibi && dq.alibi)
    #expect(keyValue.program.source.contains("#define FA_ALIBI 1\n") && dq.program.source.contains("#define FA_ALIBI 1\n"))
    let fused = KernelSelection.backward(
      try Views(Self.shape(d: 64)).backward(AttentionOptions(causal: true, alibiSlopes: Self.slopes)), arch: "sm_90a",
      tuning: .init())
    guard case let .hopperFused(fusedKey, _) = fused.form else {
      Issue.record("d = 64 ALiBi should run the fused Hopper backward, got \(fused.form)")
      return
    }
    #expect(fusedKey.alibi)
    for (options, tuning) in [
      (AttentionOptions(alibiSlopes: Self.slopes), CUDAKernelTuning(alibiKernels: .sm80)),
      (AttentionOptions(softcap: 5, alibiSlopes: Self.slopes), CUDAKernelTuning()),
    ] {
      let plan = KernelSelection.backward(try Views(Self.shape(d: 128)).backward(options), arch: "sm_90a", tuning: tuning)
      guard case let .flashAttention2(keyValue, _) = plan.form else {
        Issue.record("\(options) with \(tuning.alibiKernels) should run the FlashAttention-2 backward")
        continue
      }
      #expect(keyValue.alibi)
    }
  }

  @Test("fp8 inputs with ALiBi are refused before any kernel (the fp8 forward has no bias)")
  func float8Refused() throws {
    let views = try Views(Self.shape(d: 128), dtype: .float8E4M3)
    #expect(throws: FlashAttentionError.self) { try views.forward(AttentionOptions(alibiSlopes: Self.slopes)) }
    #expect(HopperForwardKey.alibiVariants.allSatisfy { !$0.dtype.isFloat8 })
  }

  @Test("plain Hopper programs do not define FA_ALIBI; ALiBi backward keys add 16 bytes of stats per stage")
  func plainProgramsUnchanged() throws {
    for key in HopperForwardKey.allVariants { #expect(!key.program.source.contains("#define FA_ALIBI"), "\(key)") }
    for key in HopperBackwardKey.allVariants { #expect(!key.program.source.contains("#define FA_ALIBI"), "\(key)") }
    for key in HopperBackwardDQKey.allVariants { #expect(!key.program.source.contains("#define FA_ALIBI"), "\(key)") }
    for key in HopperBackwardKey.alibiVariants {
      var plain = key
      plain.alibi = false
      #expect(key.sharedMemoryBytes == plain.sharedMemoryBytes + key.qStages * 16, "\(key)")
      #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
    }
    #expect(HopperForwardKey.alibiVariants.count == HopperForwardKey.allVariants.filter { !$0.dtype.isFloat8 }.count)
    #expect(Set(HopperForwardKey.alibiVariants.map(\.program)).count == HopperForwardKey.alibiVariants.count)
  }

  /// The forward's heaviest variants (softcap and masks at every head dim, the wide unmasked
  /// d = 128 tile, three consumers at d = 64) and every backward and dQ variant (bf16; fp16
  /// differs only in conversions).
  @Test(
    "the Hopper ALiBi variants compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"))
  func compiles() throws {
    let forward = HopperForwardKey.alibiVariants.filter { key in
      key.dtype == .bfloat16 && (key.softcap || key.consumers == 3 || (key.headDim == 128 && key.blockN == 176))
    }
    for key in forward { try expectCleanHopperCompile(key.program, "\(key)") }
    // The same set with the bias's column part on the tensor cores.
    for key in HopperForwardKey.alibiTensorCoreVariants where forward.contains(where: { $0.program == Self.fmaForm(of: key).program }) {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
    for key in HopperBackwardKey.alibiVariants where key.dtype == .bfloat16 {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
    for key in HopperBackwardKey.alibiTensorCoreVariants { try expectCleanHopperCompile(key.program, "\(key)") }
    for key in HopperBackwardDQKey.alibiVariants where key.dtype == .bfloat16 {
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }

  /// `key` with the bias back on the FMA pipe.
  static func fmaForm(of key: HopperForwardKey) -> HopperForwardKey {
    var key = key
    key.apply(alibiBias: .fma)
    return key
  }

  @Test("--alibi-bias tensor-cores: ALiBi keys define FA_ALIBI_MMA and hold the panel; plain keys are untouched")
  func tensorCoreBiasSelection() throws {
    var tuning = CUDAKernelTuning()
    tuning.alibiBias = .tensorCores
    for options in [AttentionOptions(alibiSlopes: Self.slopes), AttentionOptions(causal: true, alibiSlopes: Self.slopes)] {
      for d in [64, 128, 256] {
        let arguments = try Views(Self.shape(d: d)).forward(options)
        guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: tuning) else {
          Issue.record("ALiBi at d = \(d) should run the Hopper forward")
          continue
        }
        #expect(key.alibiOnTensorCores && key.program.source.contains("#define FA_ALIBI_MMA 1\n"))
        guard case let .hopper(fmaKey, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else { continue }
        #expect(!fmaKey.alibiOnTensorCores && !fmaKey.program.source.contains("#define FA_ALIBI_MMA"))
        #expect(key.sharedMemoryBytes == fmaKey.sharedMemoryBytes + (key.blockN / 8 + 2) * 128)
      }
    }
    let plain = try Views(Self.shape(d: 128)).forward()
    guard case let .hopper(plainKey, _) = KernelSelection.forward(plain, arch: "sm_90a", tuning: tuning) else {
      Issue.record("a plain call should run the Hopper forward")
      return
    }
    #expect(!plainKey.alibiOnTensorCores && !plainKey.program.source.contains("#define FA_ALIBI"))
    #expect(HopperForwardKey.alibiTensorCoreVariants.count == HopperForwardKey.alibiVariants.count)
    // The backward: bf16 keys that take it; fp16 and the spilling d = 128 forms keep the FFMA.
    for d in [64, 128, 256] {
      for dtype in [DType.bfloat16, .float16] {
        let arguments = try Views(Self.shape(d: d), dtype: dtype).backward(AttentionOptions(causal: true, alibiSlopes: Self.slopes))
        let plan = KernelSelection.backward(arguments, arch: "sm_90a", tuning: tuning)
        guard case let .hopperFused(keyValue, _) = plan.form else {
          if case let .hopperSplit(keyValue, _) = plan.form {
            #expect(keyValue.alibiOnTensorCores == (dtype == .bfloat16), "d \(d) \(dtype)")
            #expect(keyValue.program.source.contains("#define FA_ALIBI_MMA 1\n") == (dtype == .bfloat16))
          }
          continue
        }
        #expect(keyValue.alibiOnTensorCores == (dtype == .bfloat16), "d \(d) \(dtype)")
      }
    }
    var spilling = HopperBackwardKey(headDim: 128, dtype: .bfloat16, mask: .none)
    spilling?.alibi = true
    spilling?.dropout = true
    spilling?.dqBulk = true
    spilling?.apply(alibiBias: .tensorCores)
    #expect(spilling?.alibiOnTensorCores == false)
    #expect(HopperBackwardKey.alibiTensorCoreVariants.allSatisfy { $0.alibiOnTensorCores && $0.dtype == .bfloat16 })
    for key in HopperForwardKey.alibiTensorCoreVariants {
      #expect(key.alibiOnTensorCores && key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
    }
    let catalog = CUDAKernelCatalog.keys(arch: "sm_90a").compactMap { $0 as? HopperForwardKey }
    #expect(catalog.filter(\.alibiOnTensorCores).count == HopperForwardKey.alibiTensorCoreVariants.count)
  }

  /// Problems that reach every branch of the bias: tiles on either side of the diagonal and
  /// across it (non-causal, seqlen_q ≠ seqlen_k both ways), causal, windows, GQA/MQA, per-batch
  /// slopes, head dims 64 (fused backward), 128 (split), 256 (both warpgroups on one key block),
  /// 96 (forward only on Hopper), softcap (forward on Hopper, backward on FlashAttention-2).
  static let problems: [AttentionProblem] = {
    typealias S = AttentionShape
    typealias O = AttentionOptions
    let slopes = VerificationMatrix.alibiSlopes
    return [
      AttentionProblem(
        "alibi-cross-mqa-d128", S(batch: 2, seqlenQ: 129, seqlenK: 1000, headsQ: 4, headsKV: 1, headDim: 128),
        O(alibiSlopes: slopes(4, 2))),
      AttentionProblem(
        "alibi-sq>sk-d128", S(batch: 1, seqlenQ: 1000, seqlenK: 129, headsQ: 2, headDim: 128), O(alibiSlopes: slopes(2, nil))),
      AttentionProblem(
        "alibi-causal-gqa-d128", S(batch: 1, seqlenQ: 700, seqlenK: 1000, headsQ: 4, headsKV: 2, headDim: 128),
        O(causal: true, alibiSlopes: slopes(4, nil))),
      AttentionProblem(
        "alibi-window-d64", S(batch: 2, seqlenQ: 257, seqlenK: 300, headsQ: 2, headDim: 64),
        O(window: SlidingWindow(left: 40, right: 70), alibiSlopes: slopes(2, 2))),
      AttentionProblem(
        "alibi-causal-d64-odd", S(batch: 1, seqlenQ: 17, seqlenK: 7, headsQ: 3, headsKV: 1, headDim: 64),
        O(causal: true, alibiSlopes: slopes(3, nil))),
      AttentionProblem(
        "alibi-d256-window-sq>sk", S(batch: 1, seqlenQ: 200, seqlenK: 130, headsQ: 2, headDim: 256),
        O(window: SlidingWindow(left: 50, right: 20), alibiSlopes: slopes(2, nil))),
      AttentionProblem(
        "alibi-d256-cross", S(batch: 1, seqlenQ: 1, seqlenK: 300, headsQ: 2, headDim: 256), O(alibiSlopes: slopes(2, nil))),
      AttentionProblem(
        "alibi-d96-softcap", S(batch: 1, seqlenQ: 129, seqlenK: 200, headsQ: 2, headDim: 96),
        O(softcap: 5, alibiSlopes: slopes(2, nil))),
      AttentionProblem(
        "alibi-deterministic-d64", S(batch: 1, seqlenQ: 200, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 64),
        O(deterministic: true, alibiSlopes: slopes(4, nil))),
    ]
  }()

  @Test(
    "both ALiBi routes match the float64 reference (GPU)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: combinations(problems, [DType.bfloat16, .float16], CUDAKernelTuning.AlibiKernels.allCases))
  func matchesReference(_ problem: AttentionProblem, _ dtype: DType, _ route: CUDAKernelTuning.AlibiKernels) throws {
    let backend = try CUDABackend(device: 0, tuning: CUDAKernelTuning(alibiKernels: route))
    // On an H100 the hopper route must really run the Hopper kernels (the plan of the same call
    // on aligned device views).
    if backend.device.arch == "sm_90a" && route == .hopper {
      let views = try Views(problem.shape, dtype: dtype)
      if case .flashAttention2 = backend.forwardPlan(try views.forward(problem.options)) {
        Issue.record("\(problem.name): the ALiBi forward did not take the Hopper kernel")
      }
      if problem.options.softcap == 0 && [64, 128, 256].contains(problem.shape.headDim),
        case .flashAttention2 = backend.backwardPlan(try views.backward(problem.options)).form
      {
        Issue.record("\(problem.name): the ALiBi backward did not take the Hopper kernels")
      }
    }
    expectPasses(
      problem, dtype: dtype,
      engine: AttentionEngine(backend: backend, selectionReason: "GPU test, ALiBi kernels \(route.rawValue)"))
  }

  /// The bias's column part on the tensor cores (`--alibi-bias tensor-cores`): the same problems,
  /// and slopes past what the fp16 k-step takes (those warps keep the per-score form).
  @Test(
    "the tensor-core ALiBi bias matches the float64 reference (GPU)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: problems + [steepProblem], [DType.bfloat16, .float16])
  func tensorCoreBiasMatchesReference(_ problem: AttentionProblem, _ dtype: DType) throws {
    var tuning = CUDAKernelTuning()
    tuning.alibiBias = .tensorCores
    let backend = try CUDABackend(device: 0, tuning: tuning)
    if backend.device.arch == "sm_90a" {
      let views = try Views(problem.shape, dtype: dtype)
      guard case let .hopper(key, _) = backend.forwardPlan(try views.forward(problem.options)) else {
        Issue.record("\(problem.name): the ALiBi forward did not take the Hopper kernel")
        return
      }
      #expect(key.alibiOnTensorCores, "\(problem.name)")
      // The backward takes it in bf16 where its key compiles without spills.
      let plan = backend.backwardPlan(try views.backward(problem.options))
      let keyValue: HopperBackwardKey? =
        switch plan.form {
        case let .hopperFused(keyValue, _): keyValue
        case let .hopperSplit(keyValue, _): keyValue
        default: nil
        }
      if let keyValue {
        #expect(keyValue.alibiOnTensorCores == (dtype == .bfloat16 && keyValue.acceptsAlibiOnTensorCores), "\(problem.name)")
      }
    }
    expectPasses(
      problem, dtype: dtype, engine: AttentionEngine(backend: backend, selectionReason: "GPU test, ALiBi bias on the tensor cores"))
  }

  /// Slopes of 2000 and 0.01 at d = 128: slope / scale is past ALIBI_MMA_MAX_SLOPE for the first head.
  static let steepProblem = AttentionProblem(
    "alibi-steep-d128", AttentionShape(batch: 1, seqlenQ: 300, seqlenK: 700, headsQ: 2, headDim: 128),
    AttentionOptions(alibiSlopes: AlibiSlopes(perHead: [2000, 0.01])))
}
