import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// ALiBi in the FlashAttention-2 kernels: every ALiBi variant of the catalog compiles without
/// spills (NVRTC, no GPU), plain kernels' programs carry no trace of it, and on a GPU the
/// kernels match the float64 reference.
@Suite("ALiBi kernels")
struct AlibiKernelTests {
  @Test(
    "the ALiBi variants compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_80", "sm_90a"])
  func compiles(arch: String) throws {
    for key in CUDAKernelCatalog.flashAttention2Keys(arch: arch) where key.alibi {
      let kernel = try KernelCompiler.compile(key.program, arch: arch)
      let resources = try #require(kernel.resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
      var plain = key
      plain.alibi = false
      let plainResources = try #require(try KernelCompiler.compile(plain.program, arch: arch).resources)
      print("\(key): \(resources.registers) registers (plain \(plainResources.registers))")
    }
  }

  @Test("plain kernels' programs do not define FA_ALIBI; ALiBi keys only for forward and key/value")
  func plainProgramsUnchanged() {
    for key in CUDAKernelCatalog.flashAttention2Keys(arch: "sm_80") {
      #expect(key.program.source.contains("#define FA_ALIBI") == key.alibi, "\(key)")
      if key.alibi { #expect(key.kind == .forward || key.kind == .backwardKeyValue) }
    }
  }

  @Test(
    "forward and backward match the reference (GPU)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: [
      (AttentionShape(batch: 2, seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64),
       AttentionOptions(causal: true, alibiSlopes: AlibiSlopes(batch: 2, values: (0..<8).map { Float($0 + 1) / 8 })), DType.bfloat16),
      (AttentionShape(batch: 1, seqlenQ: 100, seqlenK: 150, headsQ: 2, headDim: 128),
       AttentionOptions(window: SlidingWindow(left: 16, right: 8), softcap: 5, alibiSlopes: AlibiSlopes(perHead: [0.5, 0.0625])), .float16),
      (AttentionShape(batch: 1, seqlenQ: 7, seqlenK: 1000, headsQ: 2, headsKV: 1, headDim: 96),
       AttentionOptions(alibiSlopes: AlibiSlopes(perHead: [0.01, 0.3])), .float16),
    ])
  func matchesReference(_ shape: AttentionShape, _ options: AttentionOptions, _ dtype: DType) throws {
    var random = TestRandom()
    let q = random.tensor(shape.qShape, dtype: dtype)
    let k = random.tensor(shape.kShape, dtype: dtype)
    let v = random.tensor(shape.vShape, dtype: dtype)
    let dOut = random.tensor(shape.oShape, dtype: dtype)
    let out = HostTensor(shape: shape.oShape, dtype: dtype)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let backend = try CUDABackend(device: 0)
    try backend.forward(ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options))
    let reference = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
    let baseline = try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: options)
    let outError = ErrorMetrics(actual: out.floats(), expected: reference.out)
    let baselineError = ErrorMetrics(actual: baseline.out.map(Float.init), expected: reference.out).relativeL2
    #expect(outError.relativeL2 <= 2 * baselineError + 1e-6, "out \(outError) vs standard \(baselineError), seed \(random.seed)")
    let lseError = ErrorMetrics(actual: lse.floats(), expected: reference.lse)
    #expect(lseError.maxAbsolute < 1e-3, "lse \(lseError), seed \(random.seed)")
    let dQ = HostTensor(shape: shape.qShape, dtype: dtype)
    let dK = HostTensor(shape: shape.kShape, dtype: dtype)
    let dV = HostTensor(shape: shape.vShape, dtype: dtype)
    try backend.backward(
      BackwardArguments(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
        dV: dV.view, options: options))
    let gradients = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    let baselineGradients = try ReferenceAttention.samePrecisionBackward(
      q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    for (name, actual, expected, standard) in [
      ("dq", dQ, gradients.dQ, baselineGradients.dQ), ("dk", dK, gradients.dK, baselineGradients.dK),
      ("dv", dV, gradients.dV, baselineGradients.dV),
    ] {
      let error = ErrorMetrics(actual: actual.floats(), expected: expected)
      let standardError = ErrorMetrics(actual: standard.map(Float.init), expected: expected).relativeL2
      #expect(error.relativeL2 <= 2 * standardError + 1e-6, "\(name) \(error) vs standard \(standardError), seed \(random.seed)")
    }
  }
}
