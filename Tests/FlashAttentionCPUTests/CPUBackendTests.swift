import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@Suite("CPU backend against the float64 reference")
struct CPUBackendTests {
  @Test("shapes off every block size", arguments: [
    AttentionCase(seqlenQ: 1, seqlenK: 1, headsQ: 1, headsKV: 1, headDim: 1),
    AttentionCase(seqlenQ: 7, seqlenK: 17, headDim: 7, headDimV: 9),
    AttentionCase(batch: 2, seqlenQ: 129, seqlenK: 129, headDim: 64),
    AttentionCase(seqlenQ: 97, seqlenK: 193, headsQ: 1, headsKV: 1, headDim: 128),
    AttentionCase(seqlenQ: 1, seqlenK: 1000, headsQ: 1, headsKV: 1, headDim: 128),
    AttentionCase(seqlenQ: 200, seqlenK: 45, headsQ: 1, headsKV: 1, headDim: 40, headDimV: 24),
  ])
  func shapes(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
  }

  @Test("causal, windows and softcap, including fully masked tiles and rows", arguments: [
    AttentionCase(seqlenQ: 129, seqlenK: 129, options: AttentionOptions(causal: true)),
    // seqlen_q > seqlen_k: bottom-right alignment leaves the first 70 rows without keys.
    AttentionCase(seqlenQ: 200, seqlenK: 130, headDim: 33, options: AttentionOptions(causal: true)),
    AttentionCase(seqlenQ: 100, seqlenK: 300, headDim: 16, options: AttentionOptions(causal: true)),
    AttentionCase(
      seqlenQ: 1000, seqlenK: 1000, headsQ: 1, headsKV: 1, headDim: 24,
      options: AttentionOptions(window: SlidingWindow(left: 50, right: 0))),
    AttentionCase(
      seqlenQ: 257, seqlenK: 257, headsQ: 4, headsKV: 2, headDim: 40, headDimV: 24,
      options: AttentionOptions(window: SlidingWindow(left: 20, right: 5))),
    AttentionCase(
      seqlenQ: 300, seqlenK: 150, headsQ: 1, headsKV: 1, headDim: 32,
      options: AttentionOptions(window: SlidingWindow(left: nil, right: 3))),
    AttentionCase(
      seqlenQ: 7, seqlenK: 129, headDim: 7, headDimV: 9, options: AttentionOptions(causal: true, softcap: 5)),
    AttentionCase(seqlenQ: 150, seqlenK: 97, headDim: 64, options: AttentionOptions(scale: 0.3, softcap: 2)),
  ])
  func masks(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
  }

  @Test("GQA, MQA and half-precision storage", arguments: [
    AttentionCase(seqlenQ: 150, seqlenK: 97, headsQ: 6, headsKV: 2, headDim: 80),
    AttentionCase(seqlenQ: 129, seqlenK: 129, headsQ: 3, headsKV: 1, headDim: 64, options: AttentionOptions(causal: true)),
    AttentionCase(seqlenQ: 150, seqlenK: 97, headsQ: 3, headsKV: 1, headDim: 80, dtype: .float16),
    AttentionCase(
      seqlenQ: 129, seqlenK: 200, headsQ: 4, headsKV: 2, headDim: 64, options: AttentionOptions(causal: true),
      dtype: .bfloat16),
    AttentionCase(seqlenQ: 65, seqlenK: 65, headDim: 24, options: AttentionOptions(softcap: 3), dtype: .float16),
  ])
  func groupsAndDTypes(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
  }

  @Test("strided inputs and thread counts", arguments: [
    AttentionCase(batch: 2, seqlenQ: 130, seqlenK: 130, headsQ: 3, headsKV: 3, headDim: 32, packedQKV: true),
    AttentionCase(
      batch: 2, seqlenQ: 130, seqlenK: 130, headsQ: 2, headsKV: 2, headDim: 48,
      options: AttentionOptions(causal: true), dtype: .bfloat16, packedQKV: true),
    AttentionCase(seqlenQ: 300, seqlenK: 300, headsQ: 2, headsKV: 1, headDim: 64, threads: 1),
    AttentionCase(seqlenQ: 300, seqlenK: 300, headsQ: 2, headsKV: 1, headDim: 64, threads: 3),
  ])
  func layouts(_ c: AttentionCase) throws {
    try expectMatchesReference(c)
  }

  @Test("an empty key sequence gives zero rows, LSE -inf and zero dQ")
  func emptyKeys() throws {
    try expectMatchesReference(AttentionCase(seqlenQ: 5, seqlenK: 0, headDim: 16))
  }

  @Test("an empty query sequence gives zero dK and dV")
  func emptyQueries() throws {
    try expectMatchesReference(AttentionCase(seqlenQ: 0, seqlenK: 9, headDim: 16))
  }
}

@Suite("CPU backend determinism")
struct CPUDeterminismTests {
  /// Issue #16, row 7: the backward pass gives the same bits on every run and for every thread
  /// count, with default options (no `deterministic` flag): the dQ contributions of the key
  /// blocks are added in a fixed order. GQA 4:1, causal, seqlen_q ≠ seqlen_k, odd lengths.
  @Test("backward: identical bits in 10 runs and across thread counts, by default", arguments: CPUInstructionSet.supported)
  func backwardBits(_ instructionSet: CPUInstructionSet) throws {
    let shape = AttentionShape(batch: 2, seqlenQ: 777, seqlenK: 901, headsQ: 8, headsKV: 2, headDim: 64)
    let options = AttentionOptions(causal: true)
    var random = TestRandom()
    let q = random.tensor(shape.qShape), k = random.tensor(shape.kShape), v = random.tensor(shape.vShape)
    let dOut = random.tensor(shape.oShape)
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    try CPUBackend(threads: 2, instructionSet: instructionSet).forward(
      ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options))
    func gradients(threads: Int) throws -> [UInt32] {
      let dQ = HostTensor(shape: shape.qShape, dtype: .float32)
      let dK = HostTensor(shape: shape.kShape, dtype: .float32)
      let dV = HostTensor(shape: shape.vShape, dtype: .float32)
      try CPUBackend(threads: threads, instructionSet: instructionSet).backward(
        BackwardArguments(
          q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
          dV: dV.view, options: options))
      return (dQ.floats() + dK.floats() + dV.floats()).map(\.bitPattern)
    }
    let first = try gradients(threads: 2)
    for run in 2...10 {
      #expect(try gradients(threads: 2) == first, "run \(run) differs, \(instructionSet), seed \(random.seed)")
    }
    for threads in [1, 3, 4] {
      #expect(try gradients(threads: threads) == first, "\(threads) threads differ from 2, \(instructionSet), seed \(random.seed)")
    }
  }
}
