@testable import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@Suite("CPU backend scratch memory")
struct ScratchPoisonTests {
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
    let engine = AttentionEngine(backend: try CPUBackend(threads: threads, instructionSet: instructionSet))
    let bytes = 4 << 20
    for problem in CPUProblems.maskedTiles {
      // Before each pass: the forward would otherwise leave finite values where the backward's
      // tiles lie, and whether NaN survived would depend on which worker ran what.
      expectPasses(problem, dtype: .float32, engine: engine) { _ in
        for worker in 0..<pool.threadCount {
          pool.scratch(worker: worker, bytes: bytes).initializeMemory(as: Float.self, repeating: .nan, count: bytes / 4)
        }
      }
    }
  }
}
