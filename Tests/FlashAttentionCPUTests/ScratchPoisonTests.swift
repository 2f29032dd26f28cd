@testable import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@Suite("CPU backend scratch memory")
struct ScratchPoisonTests {
  /// Masked tiles leave parts of the score tiles unwritten (the banded products); these cases
  /// have such tiles in both passes, with softcap's extra tanh tile in one of them.
  static let maskedCases = [
    AttentionCase(seqlenQ: 200, seqlenK: 130, headDim: 64, options: AttentionOptions(causal: true)),
    AttentionCase(
      seqlenQ: 150, seqlenK: 150, headsQ: 2, headsKV: 1, headDim: 32,
      options: AttentionOptions(window: SlidingWindow(left: 16, right: 8), softcap: 2)),
    AttentionCase(seqlenQ: 100, seqlenK: 100, headDim: 48, headDimV: 16, options: AttentionOptions(causal: true)),
  ]

  @Test(
    "NaN left in the workers' scratch memory never reaches outputs or gradients",
    arguments: CPUInstructionSet.supported)
  func poisonedScratch(_ instructionSet: CPUInstructionSet) throws {
    // A thread count no other test uses (they take every core or 1–3 threads), so that no other
    // call shares this pool while its scratch is overwritten; one per instruction set, since
    // the two arguments may run in parallel.
    let base = max(CPUFeatures.current.logicalCores, 3) + 2
    let threads = instructionSet == .avx2 ? base : base + 1
    let pool = WorkerPool.shared(threads: threads)
    let backend = try CPUBackend(threads: threads, instructionSet: instructionSet)
    let bytes = 4 << 20
    func poison() {
      for worker in 0..<pool.threadCount {
        pool.scratch(worker: worker, bytes: bytes).initializeMemory(as: Float.self, repeating: .nan, count: bytes / 4)
      }
    }
    for testCase in ScratchPoisonTests.maskedCases {
      // Before each pass: the forward would otherwise leave finite values where the backward's
      // tiles lie, and whether NaN survived would depend on which worker ran what.
      poison()
      try expectMatchesReference(testCase, backend: backend, beforeBackward: poison)
    }
  }
}
