import FlashAttention
import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// The fp8 (e4m3) Hopper forward: keys and compiles here (NVRTC, no GPU), numerics on an H100.
@Suite("fp8 Hopper forward: keys and compiles (NVRTC, no GPU)")
struct Float8HopperCompileTests {
  @Test func keysCoverTheFloat8HeadDims() throws {
    for (d, dv) in HopperForwardKey.supportedFloat8HeadDims {
      for output in [DType.bfloat16, .float16] {
        let key = try #require(
          HopperForwardKey(headDim: d, headDimV: dv, dtype: .float8E4M3, mask: .causal, softcap: false, output: output))
        #expect(key.sharedMemoryBytes <= 227 * 1024, "\(key) needs \(key.sharedMemoryBytes) bytes")
        #expect(key.blockN % 128 == 0, "\(key): V^T panels need 128-key tiles")
        #expect(key.program.source.contains("#define FA_FP8 1\n"))
        #expect(key.program.source.contains("#define FA_BF16 \(output == .bfloat16 ? 1 : 0)\n"))
      }
    }
    #expect(HopperForwardKey(headDim: 96, headDimV: 96, dtype: .float8E4M3, mask: .none, softcap: false) == nil)
    #expect(
      HopperForwardKey(headDim: 128, headDimV: 128, dtype: .float8E4M3, mask: .none, softcap: false, output: .float32)
        == nil)
    let bf16 = try #require(HopperForwardKey(headDim: 128, headDimV: 128, dtype: .bfloat16, mask: .none, softcap: false))
    #expect(bf16.output == .bfloat16 && bf16.program.source.contains("#define FA_FP8 0\n"))
  }

  @Test func heaviestFloat8VariantsCompileWithoutSpills() throws {
    guard (try? KernelCompiler.nvrtcVersion()) != nil else {
      print("NVRTC not found: fp8 compile check skipped (pip install nvidia-cuda-nvrtc)")
      return
    }
    for (d, dv) in HopperForwardKey.supportedFloat8HeadDims {
      let key = try #require(
        HopperForwardKey(headDim: d, headDimV: dv, dtype: .float8E4M3, mask: .window, softcap: true, output: .bfloat16))
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }
}

/// The tuning knob that moves part of the fp8 softmax's exponentials to the FMA pipe
/// (`--fp8-exp2-fma-period`): which keys take it, what the program says, and that the periods a
/// device run compares (8, 5, 4) compile clean at the unmasked tiles.
@Suite("fp8 exponentials on the FMA pipe: selection and compiles (NVRTC, no GPU)")
struct Float8Exp2OnFMATests {
  static func forwardArguments(dtype: DType, softcap: Float) throws -> ForwardArguments {
    let shape = AttentionShape(batch: 1, seqlenQ: 256, seqlenK: 256, headsQ: 2, headDim: 128)
    let out = HostTensor(shape: shape.oShape, dtype: dtype.isFloat8 ? .bfloat16 : dtype)
    return try ForwardArguments(
      q: HostTensor(shape: shape.qShape, dtype: dtype).view, k: HostTensor(shape: shape.kShape, dtype: dtype).view,
      v: HostTensor(shape: shape.vShape, dtype: dtype).view, out: out.view,
      lse: HostTensor(shape: shape.lseShape, dtype: .float32).view, options: AttentionOptions(softcap: softcap))
  }

  static func periodDefines(_ key: HopperForwardKey) -> Int {
    key.program.source.components(separatedBy: "#define FA_EXP2_FMA_PERIOD").count - 1
  }

  @Test("only fp8 keys without softcap take the period; the default is none")
  func selection() throws {
    var tuning = CUDAKernelTuning()
    tuning.float8Exp2OnFMAPeriod = 5
    for (dtype, softcap, expected) in [(DType.float8E4M3, Float(0), 5), (.float8E4M3, 30, 0), (.bfloat16, 0, 0)] {
      let arguments = try Self.forwardArguments(dtype: dtype, softcap: softcap)
      guard case let .hopper(key, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: tuning) else {
        Issue.record("\(dtype) softcap \(softcap): not the Hopper kernel")
        continue
      }
      #expect(key.exp2OnFMAPeriod == expected, "\(key)")
      // The source's own `#define FA_EXP2_FMA_PERIOD 0` (its fallback) is always there once.
      #expect(Self.periodDefines(key) == (expected > 0 ? 2 : 1), "\(key)")
      #expect(expected == 0 || key.program.source.hasPrefix("#define FA_HEAD_DIM")
        && key.program.source.contains("#define FA_EXP2_FMA_PERIOD \(expected)\n"), "\(key)")
      guard case let .hopper(plain, _) = KernelSelection.forward(arguments, arch: "sm_90a", tuning: CUDAKernelTuning()) else {
        continue
      }
      #expect(plain.exp2OnFMAPeriod == 0 && Self.periodDefines(plain) == 1, "\(plain)")
    }
  }

  @Test("periods 8, 5 and 4 compile without spills at the unmasked fp8 tiles", arguments: [8, 5, 4])
  func compiles(_ period: Int) throws {
    guard (try? KernelCompiler.nvrtcVersion()) != nil else {
      print("NVRTC not found: fp8 exp2 compile check skipped (pip install nvidia-cuda-nvrtc)")
      return
    }
    for (d, dv) in HopperForwardKey.supportedFloat8HeadDims {
      var key = try #require(
        HopperForwardKey(headDim: d, headDimV: dv, dtype: .float8E4M3, mask: .none, softcap: false, output: .bfloat16))
      key.exp2OnFMAPeriod = period
      try expectCleanHopperCompile(key.program, "\(key)")
    }
  }
}

/// True when the GPU is a Hopper that runs the fp8 kernel.
let hopperAvailable: Bool = gpuAvailable && ((try? CUDABackend(device: 0).device.arch) == "sm_90a")

@Suite("fp8 Hopper forward against the float64 reference (GPU)")
struct Float8GPUTests {
  @Test(
    "the fp8 verification matrix passes on the GPU",
    .enabled(if: hopperAvailable, "skipped: no sm_90a CUDA device"),
    arguments: VerificationMatrix.float8)
  func matrixPasses(_ testCase: AttentionProblem) throws {
    let engine = AttentionEngine(backend: try CUDABackend(device: 0), selectionReason: "fp8 GPU test")
    let result = Verification(engine: engine).run(testCase, dtype: .float8E4M3)
    #expect(result.passed, "\(result.summary)")
  }

  @Test(
    "the GPU agrees with the CPU on fp8 inputs with an fp16 output",
    .enabled(if: hopperAvailable, "skipped: no sm_90a CUDA device"))
  func agreesWithCPU() throws {
    let shape = AttentionShape(batch: 2, seqlenQ: 300, seqlenK: 517, headsQ: 4, headsKV: 2, headDim: 128)
    var random = VerificationRandom(seed: UInt64.random(in: 1...UInt64.max))
    let q = random.tensor(shape.qShape, dtype: .float8E4M3)
    let k = random.tensor(shape.kShape, dtype: .float8E4M3)
    let v = random.tensor(shape.vShape, dtype: .float8E4M3)
    let factors = (0..<3).map { index in
      HostTensor((0..<4).map { Float($0 + index) * 0.25 + 0.5 }, shape: [2, 2])
    }
    let descale = FP8Descale(q: factors[0].view, k: factors[1].view, v: factors[2].view)
    let options = AttentionOptions(causal: true)
    var outputs: [[Float]] = []
    for backend in [try CUDABackend(device: 0) as any AttentionBackend, try CPUBackend()] {
      let out = HostTensor(shape: shape.oShape, dtype: .float16)
      let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
      try AttentionEngine(backend: backend).forward(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options, descale: descale)
      outputs.append(out.floats())
    }
    let reference = outputs[1].map(Double.init)
    let error = ErrorMetrics(actual: outputs[0], expected: reference)
    // P in e4m3 costs about 2^-5 relative per probability; a few percent over a row.
    #expect(error.nonFiniteCount == 0 && error.relativeL2 < 3e-2, "GPU vs CPU fp8: \(error), seed \(random)")
  }

  @Test(
    "fp8 calls the kernel cannot take are refused, not run",
    .enabled(if: hopperAvailable, "skipped: no sm_90a CUDA device"))
  func refusals() throws {
    let shape = AttentionShape(batch: 1, seqlenQ: 16, headsQ: 2, headDim: 96)
    let q = HostTensor(shape: shape.qShape, dtype: .float8E4M3)
    let out = HostTensor(shape: shape.oShape, dtype: .bfloat16)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let backend = try CUDABackend(device: 0)
    #expect(throws: FlashAttentionError.self) {
      try backend.forward(
        ForwardArguments(q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, options: AttentionOptions()))
    }
  }
}
