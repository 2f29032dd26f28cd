import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

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
