import FlashAttentionCore
import FlashAttentionTestSupport
import Testing
@testable import FlashAttentionCUDA

/// True when a CUDA device and NVRTC are usable (never in CI: these tests then show as skipped).
let gpuAvailable: Bool = CUDAEnvironmentReport.probe().isUsable

@Suite("CUDA kernels against the float64 reference (GPU)")
struct GPUAttentionTests {
  /// The storage dtypes the kernels are built for.
  static let dtypes: [DType] = [.float16, .bfloat16]
  /// Both forward families: the Hopper kernels where they apply (FlashAttention-2 elsewhere), and
  /// FlashAttention-2 alone, so that an sm_90 device checks both.
  static let forwardKernels = CUDAKernelTuning.ForwardKernels.allCases

  /// Problems beyond the verify matrix: GQA with causal at d = 128, a window with softcap and
  /// MQA, d ≠ d_v at 192/128, a window that leaves rows without keys at d = 256, Q, K, V as
  /// slices of one fused-QKV buffer, and heads past 256 (d 512, d 320 / d_v 264; with ALiBi and
  /// with dropout too).
  static let problems: [AttentionProblem] = [
    AttentionProblem(
      "causal-gqa2-129-d128", AttentionShape(batch: 1, seqlenQ: 129, headsQ: 4, headsKV: 2, headDim: 128),
      AttentionOptions(causal: true)),
    AttentionProblem(
      "window-16-8-softcap-mqa", AttentionShape(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headsKV: 1, headDim: 64),
      AttentionOptions(window: SlidingWindow(left: 16, right: 8), softcap: 5)),
    AttentionProblem(
      "33x47-d192-dv128", AttentionShape(batch: 1, seqlenQ: 33, seqlenK: 47, headsQ: 2, headDim: 192, headDimV: 128)),
    AttentionProblem(
      "window-3-0-d256", AttentionShape(batch: 1, seqlenQ: 60, seqlenK: 20, headsQ: 2, headDim: 256),
      AttentionOptions(window: SlidingWindow(left: 3, right: 0))),
    AttentionProblem("7x17-d40-b2", AttentionShape(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 40)),
    AttentionProblem(
      "causal-129x17", AttentionShape(batch: 1, seqlenQ: 129, seqlenK: 17, headsQ: 2, headDim: 64),
      AttentionOptions(causal: true)),
    AttentionProblem(
      "packed-qkv-causal-d128", AttentionShape(batch: 2, seqlenQ: 130, headsQ: 2, headDim: 128),
      AttentionOptions(causal: true), layout: .packedQKV),
    // Heads past 256 (the forward in value chunks, the backward's 32 x 32 tile).
    AttentionProblem(
      "causal-gqa2-129-d512", AttentionShape(batch: 1, seqlenQ: 129, headsQ: 4, headsKV: 2, headDim: 512),
      AttentionOptions(causal: true)),
    AttentionProblem("decode-1x1000-d512", AttentionShape(batch: 2, seqlenQ: 1, seqlenK: 1000, headsQ: 2, headDim: 512)),
    AttentionProblem(
      "window-softcap-17x1000-d512", AttentionShape(batch: 1, seqlenQ: 17, seqlenK: 1000, headsQ: 2, headDim: 512),
      AttentionOptions(window: SlidingWindow(left: 100, right: 7), softcap: 20)),
    AttentionProblem(
      "7x17-d320-dv264-b2", AttentionShape(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 320, headDimV: 264)),
    AttentionProblem(
      "deterministic-d512", AttentionShape(batch: 1, seqlenQ: 100, seqlenK: 130, headsQ: 2, headDim: 512),
      AttentionOptions(causal: true, deterministic: true)),
    AttentionProblem(
      "alibi-causal-gqa2-d512", AttentionShape(batch: 2, seqlenQ: 65, seqlenK: 97, headsQ: 4, headsKV: 2, headDim: 512),
      AttentionOptions(causal: true, alibiSlopes: VerificationMatrix.alibiSlopes(heads: 4, batch: 2))),
    AttentionProblem(
      "dropout-d512", AttentionShape(batch: 1, seqlenQ: 33, seqlenK: 80, headsQ: 2, headDim: 512),
      AttentionOptions(dropout: AttentionDropout(probability: 0.2, seed: 7, offset: 64))),
  ]

  /// A CUDA engine on device 0 whose forward pass may use `kernels`.
  static func engine(_ kernels: CUDAKernelTuning.ForwardKernels) throws -> AttentionEngine {
    AttentionEngine(
      backend: try CUDABackend(device: 0, tuning: CUDAKernelTuning(forwardKernels: kernels)),
      selectionReason: "GPU test, forward kernels \(kernels.rawValue)")
  }

  /// Dropout problems included: the kernels drop with the CPU's keep mask, and the reference
  /// applies the same mask (on sm_90a the auto route runs the dropout forward on the Hopper
  /// kernel, fa2 on FlashAttention-2's; DropoutHopperTests crosses both with more shapes).
  @Test(
    "the verify matrix, both forward kernel families",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: combinations(VerificationMatrix.standard, dtypes, forwardKernels))
  func verifyMatrix(_ problem: AttentionProblem, _ dtype: DType, _ kernels: CUDAKernelTuning.ForwardKernels) throws {
    expectPasses(problem, dtype: dtype, engine: try Self.engine(kernels))
  }

  @Test(
    "GQA, masks, softcap and head dims beyond the matrix",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: combinations(problems, dtypes, forwardKernels))
  func moreProblems(_ problem: AttentionProblem, _ dtype: DType, _ kernels: CUDAKernelTuning.ForwardKernels) throws {
    expectPasses(problem, dtype: dtype, engine: try Self.engine(kernels))
  }

  @Test(
    "concurrent callers compile a kernel once",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device"))
  func compileOnce() async throws {
    let device = try CUDADevice.open(ordinal: 0)
    // A source no other test uses, so this test's compile is the only one of its key.
    let program = CUDAProgram(
      entry: "once", source: "extern \"C\" __global__ void once(float* x) { x[threadIdx.x] = \(UInt32.random(in: 0...UInt32.max)).f; }",
      options: ["-DFA_TEST_NONCE=\(UInt64.random(in: 0...UInt64.max))"])
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask { _ = try KernelCache.shared.function(for: program, device: device) }
      }
      try await group.waitForAll()
    }
    // Per program: other tests compile their kernels concurrently (the global count rose by 27
    // in the device run of 2026-12-06 while this test's own program compiled once).
    #expect(KernelCache.shared.compileCount(of: program) == 1)
  }
}
