import FlashAttentionCore
import FlashAttentionTestSupport
import Testing
@testable import FlashAttentionCUDA

/// True when a CUDA device and NVRTC are usable (never in CI: these tests then show as skipped).
let gpuAvailable: Bool = CUDAEnvironmentReport.probe().isUsable

@Suite("CUDA kernels against the float64 reference (GPU)")
struct GPUAttentionTests {
  struct Case: Sendable, CustomStringConvertible {
    var shape: AttentionShape
    var options: AttentionOptions
    var dtype: DType
    var description: String { "\(shape) \(dtype) causal=\(options.causal) window=\(options.window.map { "\($0)" } ?? "-") softcap=\(options.softcap)" }
  }

  static let cases: [Case] = [
    Case(shape: AttentionShape(batch: 2, seqlenQ: 7, seqlenK: 17, headsQ: 3, headDim: 40), options: .init(), dtype: .float16),
    Case(shape: AttentionShape(batch: 1, seqlenQ: 129, seqlenK: 129, headsQ: 4, headsKV: 2, headDim: 128), options: .init(causal: true), dtype: .bfloat16),
    Case(shape: AttentionShape(batch: 1, seqlenQ: 129, seqlenK: 17, headsQ: 2, headDim: 64), options: .init(causal: true), dtype: .float16),
    Case(
      shape: AttentionShape(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headsKV: 1, headDim: 64),
      options: .init(window: SlidingWindow(left: 16, right: 8), softcap: 5), dtype: .bfloat16),
    Case(shape: AttentionShape(batch: 1, seqlenQ: 33, seqlenK: 47, headsQ: 2, headDim: 192, headDimV: 128), options: .init(), dtype: .float16),
    Case(shape: AttentionShape(batch: 1, seqlenQ: 60, seqlenK: 20, headsQ: 2, headDim: 256), options: .init(window: SlidingWindow(left: 3, right: 0)), dtype: .bfloat16),
  ]

  @Test(
    "forward and backward match the reference",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: cases)
  func matchesReference(_ testCase: Case) throws {
    var random = TestRandom()
    let shape = testCase.shape
    let q = random.tensor(shape.qShape, dtype: testCase.dtype)
    let k = random.tensor(shape.kShape, dtype: testCase.dtype)
    let v = random.tensor(shape.vShape, dtype: testCase.dtype)
    let dOut = random.tensor(shape.oShape, dtype: testCase.dtype)
    let out = HostTensor(shape: shape.oShape, dtype: testCase.dtype)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let backend = try CUDABackend(device: 0)
    try backend.forward(ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: testCase.options))
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: testCase.options)
    let tolerance = testCase.dtype == .bfloat16 ? 2e-2 : 4e-3
    let outError = ErrorMetrics(actual: out.floats(), expected: reference.out)
    #expect(outError.passes(tolerance: tolerance), "out \(outError), seed \(random.seed), \(testCase)")
    let finiteLSE = reference.lse.map { $0.isFinite ? $0 : 0 }
    let lseActual = lse.floats()
    #expect(zip(lseActual, reference.lse).allSatisfy { $0.isFinite == $1.isFinite }, "LSE ±inf pattern, seed \(random.seed)")
    let lseError = ErrorMetrics(actual: lseActual.map { $0.isFinite ? $0 : 0 }, expected: finiteLSE)
    #expect(lseError.passes(tolerance: 1e-3), "lse \(lseError), seed \(random.seed)")

    let dQ = HostTensor(shape: shape.qShape, dtype: testCase.dtype)
    let dK = HostTensor(shape: shape.kShape, dtype: testCase.dtype)
    let dV = HostTensor(shape: shape.vShape, dtype: testCase.dtype)
    try backend.backward(BackwardArguments(
      q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view,
      dK: dK.view, dV: dV.view, options: testCase.options))
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: testCase.options)
    for (name, actual, expected) in [("dq", dQ, gradients.dQ), ("dk", dK, gradients.dK), ("dv", dV, gradients.dV)] {
      let error = ErrorMetrics(actual: actual.floats(), expected: expected)
      #expect(error.passes(tolerance: 2 * tolerance), "\(name) \(error), seed \(random.seed), \(testCase)")
    }
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
    let before = KernelCache.shared.compileCount
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask { _ = try KernelCache.shared.function(for: program, device: device) }
      }
      try await group.waitForAll()
    }
    #expect(KernelCache.shared.compileCount - before <= 1)
  }
}
