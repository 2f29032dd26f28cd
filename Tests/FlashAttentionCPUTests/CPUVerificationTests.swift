@testable import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// The CPU backend under the pass rule every backend shares (`expectPasses`: the float64
/// reference, fresh random inputs, NaN-poisoned outputs, at most 2x the error of a
/// same-precision standard attention, exact zeros where nothing is visible), on every
/// instruction set this CPU runs.
@Suite("CPU backend against the float64 reference")
struct CPUVerificationTests {
  static let instructionSets = CPUInstructionSet.supported

  /// An engine on one build of the kernels (what `FLASH_ATTENTION_CPU_ISA` picks for `verify`).
  static func engine(_ instructionSet: CPUInstructionSet, threads: Int? = nil) throws -> AttentionEngine {
    AttentionEngine(backend: try CPUBackend(threads: threads, instructionSet: instructionSet))
  }

  /// The 16-bit and 32-bit storage dtypes: fp8 has its own matrix (Float8Tests) and no backward.
  static let dtypes = DType.allCases.filter { !$0.isFloat8 }

  @Test(
    "the verify matrix in every dtype", arguments: combinations(VerificationMatrix.standard, dtypes, instructionSets))
  func verifyMatrix(_ problem: AttentionProblem, _ dtype: DType, _ instructionSet: CPUInstructionSet) throws {
    expectPasses(problem, dtype: dtype, engine: try Self.engine(instructionSet))
  }

  @Test("odd sizes, head dims and GQA groups", arguments: CPUProblems.shapes, instructionSets)
  func shapes(_ problem: AttentionProblem, _ instructionSet: CPUInstructionSet) throws {
    expectPasses(problem, dtype: .float32, engine: try Self.engine(instructionSet))
  }

  @Test("causal, windows and softcap, with fully masked tiles and rows", arguments: CPUProblems.masks, instructionSets)
  func masks(_ problem: AttentionProblem, _ instructionSet: CPUInstructionSet) throws {
    expectPasses(problem, dtype: .float32, engine: try Self.engine(instructionSet))
  }

  @Test(
    "packed QKV and padded rows",
    arguments: combinations(CPUProblems.layouts, [DType.float32, .bfloat16], instructionSets))
  func layouts(_ problem: AttentionProblem, _ dtype: DType, _ instructionSet: CPUInstructionSet) throws {
    expectPasses(problem, dtype: dtype, engine: try Self.engine(instructionSet))
  }

  @Test(
    "fp16 and bf16 storage",
    arguments: combinations(CPUProblems.halfPrecision, [DType.float16, .bfloat16], instructionSets))
  func halfPrecision(_ problem: AttentionProblem, _ dtype: DType, _ instructionSet: CPUInstructionSet) throws {
    expectPasses(problem, dtype: dtype, engine: try Self.engine(instructionSet))
  }

  @Test("V packed into column panels (forward)", arguments: CPUProblems.valuePanels, instructionSets)
  func valuePanels(_ problem: AttentionProblem, _ instructionSet: CPUInstructionSet) throws {
    // The problem must take the panel path, or this test checks nothing new.
    let probe = HostTensor(shape: [1, 1, 1, 1], dtype: .float32)
    let v = TensorView(baseAddress: probe.storage, dtype: .float32, shape: problem.shape.vShape)
    #expect(HeadRows(v, batch: 0, head: 0).rowsShareOneL1Set, "\(problem) does not take the panel path")
    expectPasses(problem, dtype: .float32, engine: try Self.engine(instructionSet))
  }

  @Test("1 and 3 threads", arguments: CPUProblems.threadSplits, [1, 3])
  func threadCounts(_ problem: AttentionProblem, _ threads: Int) throws {
    for instructionSet in Self.instructionSets {
      expectPasses(problem, dtype: .float32, engine: try Self.engine(instructionSet, threads: threads))
    }
  }

  @Test("a call does not depend on the calls before it (no stale scratch memory)")
  func independentOfEarlierCalls() throws {
    let engine = try AttentionEngine(backend: CPUBackend())
    let matrix = Dictionary(uniqueKeysWithValues: VerificationMatrix.standard.map { ($0.name, $0) })
    let target = try #require(matrix["window-16-8"])
    // Larger head dims and masked rows leave other values in the workers' scratch buffers.
    for name in ["d160", "causal-sq>sk", "softcap-2.5", "dv128-d192"] {
      _ = Verification(engine: engine).run(try #require(matrix[name]), dtype: .float32)
      expectPasses(target, dtype: .float32, engine: engine)
    }
  }
}

/// Standard attention (S and P in memory), the CPU baseline of the benchmarks, under the same rule.
@Suite("Standard (materializing) attention")
struct StandardAttentionTests {
  static let problems = [
    AttentionProblem("7x17-d7-dv9", AttentionShape(batch: 1, seqlenQ: 7, seqlenK: 17, headsQ: 2, headDim: 7, headDimV: 9)),
    AttentionProblem(
      "b2-gqa2", AttentionShape(batch: 2, seqlenQ: 129, seqlenK: 100, headsQ: 4, headsKV: 2, headDim: 64)),
    AttentionProblem(
      "causal-200x130-d33", AttentionShape(batch: 1, seqlenQ: 200, seqlenK: 130, headsQ: 2, headDim: 33),
      AttentionOptions(causal: true)),
    AttentionProblem(
      "window-20-5-gqa2", AttentionShape(batch: 1, seqlenQ: 257, headsQ: 2, headsKV: 1, headDim: 40, headDimV: 24),
      AttentionOptions(window: SlidingWindow(left: 20, right: 5))),
  ]

  @Test("matches the float64 reference", arguments: problems)
  func matchesReference(_ problem: AttentionProblem) throws {
    expectPasses(problem, dtype: .float32, engine: AttentionEngine(backend: try StandardAttention(threads: 2)))
  }

  @Test("refuses a problem larger than memory with outOfMemory, before allocating")
  func outOfMemory() throws {
    // One head of d = 1 and 2^20 tokens: 4 MiB inputs, but S alone would need 4 TiB.
    let n = 1 << 20
    let shape = AttentionShape(batch: 1, seqlenQ: n, headsQ: 1, headDim: 1)
    let standard = try StandardAttention(threads: 1)
    #expect(standard.requiredBytes(for: shape) >= 4 * n * n)
    let q = HostTensor(shape: shape.qShape, dtype: .float32)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let arguments = try ForwardArguments(q: q.view, k: q.view, v: q.view, out: out.view, lse: lse.view, options: AttentionOptions())
    #expect {
      try standard.forward(arguments)
    } throws: { error in
      if case .outOfMemory = error as? FlashAttentionError { return true }
      return false
    }
  }
}
