import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// Which kernels a call runs (no GPU: the views hold made-up, aligned device addresses that no
/// kernel reads).
@Suite("Kernel selection and the catalog")
struct KernelSelectionTests {
  /// Contiguous views of one problem, 256-byte aligned fake device addresses.
  struct Views {
    var q, k, v, out, lse, dOut, dQ, dK, dV: TensorView

    init(_ shape: AttentionShape, dtype: DType = .bfloat16) throws {
      var next: UInt64 = 1 << 20
      func view(_ shape: [Int], _ dtype: DType) throws -> TensorView {
        defer { next += UInt64(shape.reduce(1, *) * dtype.byteSize + 256) / 256 * 256 }
        return try #require(TensorView(devicePointer: next, dtype: dtype, shape: shape))
      }
      q = try view(shape.qShape, dtype)
      k = try view(shape.kShape, dtype)
      v = try view(shape.vShape, dtype)
      out = try view(shape.oShape, dtype)
      lse = try view(shape.lseShape, .float32)
      dOut = try view(shape.oShape, dtype)
      dQ = try view(shape.qShape, dtype)
      dK = try view(shape.kShape, dtype)
      dV = try view(shape.vShape, dtype)
    }

    func forward(_ options: AttentionOptions = AttentionOptions()) throws -> ForwardArguments {
      try ForwardArguments(q: q, k: k, v: v, out: out, lse: lse, options: options)
    }

    func backward(_ options: AttentionOptions = AttentionOptions()) throws -> BackwardArguments {
      try BackwardArguments(
        q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, options: options)
    }
  }

  func shape(d: Int, dv: Int? = nil, seqlen: Int = 300) -> AttentionShape {
    AttentionShape(batch: 2, seqlenQ: seqlen, seqlenK: seqlen, headsQ: 4, headsKV: 2, headDim: d, headDimV: dv ?? d)
  }

  @Test("the forward runs the Hopper kernel on sm_90a where it applies, FlashAttention-2 elsewhere")
  func forwardSelection() throws {
    let arguments = try Views(shape(d: 128)).forward(AttentionOptions(causal: true))
    guard case let .hopper(key, persistent) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: .init()) else {
      Issue.record("d = 128 bf16 on sm_90a should run the Hopper forward")
      return
    }
    #expect(key.mask == .causal && key.headDim == 128 && persistent)
    for (arch, tuning) in [("sm_80", CUDAKernelTuning()), ("sm_90a", CUDAKernelTuning(forwardKernels: .flashAttention2))] {
      guard case let .flashAttention2(key) = KernelSelection.forward(arguments, arch: arch, tuning: tuning) else {
        Issue.record("\(arch) \(tuning) should run the FlashAttention-2 forward")
        continue
      }
      #expect(key.kind == .forward && key.masked && key.arch == arch)
    }
    // Head dims without a Hopper variant, and keys that TMA cannot describe (none), fall back.
    let narrow = try Views(shape(d: 40)).forward()
    #expect(KernelSelection.hopperForwardObstacle(narrow, arch: "sm_90a") != nil)
    let empty = try Views(AttentionShape(batch: 1, seqlenQ: 5, seqlenK: 0, headsQ: 2, headDim: 64)).forward()
    #expect(KernelSelection.hopperForwardObstacle(empty, arch: "sm_90a") == "seqlen_k is 0")
  }

  @Test("a forward tile override reaches the FlashAttention-2 key")
  func forwardTileOverride() throws {
    let arguments = try Views(shape(d: 64)).forward()
    let tile = try #require(AttentionTile.forward(parsing: "64x64x4"))
    let plan = KernelSelection.forward(
      arguments, arch: "sm_80", tuning: CUDAKernelTuning(forwardTile: tile))
    guard case let .flashAttention2(key) = plan else {
      Issue.record("expected the FlashAttention-2 forward")
      return
    }
    #expect(key.tile.blockM == 64 && key.tile.blockN == 64 && key.tile.warps == 4 && key.tile.qInRegisters)
    #expect(AttentionTile.forward(parsing: "100x64x4") == nil)
    #expect(AttentionTile.forward(parsing: "64x64") == nil)
    #expect(AttentionTile.backward(parsing: "64x128x3") == nil)
  }

  @Test("the backward's form: fused with bulk dQ reductions at d = 64/128, split at 256, with a two-sided window at 128 and when deterministic, FlashAttention-2 with softcap")
  func backwardSelection() throws {
    func form(_ d: Int, _ options: AttentionOptions = AttentionOptions(), arch: String = "sm_90a") throws
      -> BackwardKernelPlan.Form
    {
      KernelSelection.backward(try Views(shape(d: d)).backward(options), arch: arch, tuning: .init()).form
    }
    for (d, options) in [(64, AttentionOptions()), (128, AttentionOptions(causal: true))] {
      guard case let .hopperFused(keyValue, convert) = try form(d, options) else {
        Issue.record("d = \(d) should run the fused Hopper backward")
        return
      }
      #expect(!keyValue.skipDQ && keyValue.dqBulk && convert.hopperPieces)
    }
    guard case let .hopperSplit(splitKeyValue, dq) = try form(128, AttentionOptions(window: SlidingWindow(left: 9, right: 9), deterministic: true))
    else {
      Issue.record("d = 128 deterministic with a two-sided window should run the split Hopper backward")
      return
    }
    #expect(splitKeyValue.skipDQ && dq.mask == .window)
    guard case .hopperSplit = try form(256, AttentionOptions(causal: true)) else {
      Issue.record("d = 256 should run the split Hopper backward")
      return
    }
    guard case .hopperSplit = try form(64, AttentionOptions(deterministic: true)) else {
      Issue.record("the deterministic mode should split")
      return
    }
    guard case .flashAttention2 = try form(128, AttentionOptions(softcap: 30)),
      case .flashAttention2 = try form(128, arch: "sm_80"), case .flashAttention2 = try form(96)
    else {
      Issue.record("softcap, sm_80 and d = 96 should run the FlashAttention-2 backward")
      return
    }
  }

  @Test("the backward scratch: no accumulator in the split form, whole 64-row blocks in the bulk form")
  func scratchLayout() throws {
    let s = shape(d: 256)
    let split = KernelSelection.backward(try Views(s).backward(), arch: "sm_90a", tuning: .init())
    let layout = BackwardScratch.Layout(plan: split, shape: s)
    #expect(layout.accumulatorFloats == 0)
    #expect(layout.bytes == (2 * s.batch * s.headsQ * s.seqlenQ * 4 + 255) / 256 * 256)
    let bulk = KernelSelection.backward(try Views(shape(d: 64)).backward(), arch: "sm_90a", tuning: .init())
    #expect(BackwardScratch.Layout(plan: bulk, shape: shape(d: 64)).accumulatorFloats == 2 * 320 * 4 * 64)
    var atomics = CUDAKernelTuning()
    atomics.hopperBackwardForm = .fused
    let fused = KernelSelection.backward(try Views(shape(d: 64)).backward(), arch: "sm_90a", tuning: atomics)
    #expect(BackwardScratch.Layout(plan: fused, shape: shape(d: 64)).accumulatorFloats == 2 * 300 * 4 * 64)
  }

  @Test("the catalog lists every family, each program once")
  func catalog() {
    let hopper = CUDAKernelCatalog.keys(arch: "sm_90a")
    let ampere = CUDAKernelCatalog.keys(arch: "sm_80")
    for family in CUDAKernelFamily.allCases {
      #expect(hopper.contains { $0.family == family }, "\(family) on sm_90a")
    }
    #expect(!ampere.contains { $0.family == .hopper })
    #expect(Set(hopper.map(\.program)).count == hopper.count)
    #expect(hopper.filter { $0.family == .standardAttention }.count == 2 * StandardAttentionKey.Entry.allCases.count)
  }

  @Test("keys of different families are different cache keys")
  func anyKernelKey() throws {
    let forward = FlashAttention2Key.make(
      kind: .forward, headDim: 64, headDimV: 64, dtype: .bfloat16, masked: false, softcap: false,
      deterministic: false, arch: "sm_90a")
    let hopper = try #require(HopperBackwardKey(headDim: 64, dtype: .bfloat16, mask: .none))
    #expect(AnyKernelKey(forward) == AnyKernelKey(forward))
    #expect(AnyKernelKey(forward) != AnyKernelKey(hopper))
    #expect(Set([AnyKernelKey(forward), AnyKernelKey(forward), AnyKernelKey(hopper)]).count == 2)
  }
}
