#if canImport(Glibc)
  import Glibc
#endif
import FlashAttentionCore
import FlashAttentionTestSupport
import FlashAttentionTools
import Testing

@testable import FlashAttentionCUDA

/// The fused split merge (`--decode-combine fused`): the choice and its fallbacks on the host,
/// and its kernels through NVRTC.
@Suite("Decode split merge: fused or separate")
struct DecodeCombineTests {
  let shape = AttentionShape(batch: 2, seqlenQ: 1, seqlenK: 8192, headsQ: 32, headsKV: 8, headDim: 128)

  @Test("the default is the fused merge; a fused plan needs one counter per row block, kv head and sequence")
  func defaultsAndGroups() {
    #expect(CUDAKernelTuning().decodeCombine == .fused)
    #expect(CUDAKernelTuning(decodeCombine: .fused).decodeCombine == .fused)
    let plan = DecodePlan.make(
      shape: AttentionShape(batch: 3, seqlenQ: 5, seqlenK: 4096, headsQ: 16, headsKV: 2, headDim: 64), dtype: .float16,
      options: AttentionOptions(), paged: false, maxKeys: 4096, requestedSplits: 7, arch: "sm_90a", multiprocessors: 132)
    // 5 tokens × 8 heads per group = 40 packed rows: blocks of 16 or 32 rows.
    #expect(plan.mergeGroups(AttentionShape(batch: 3, seqlenQ: 5, seqlenK: 4096, headsQ: 16, headsKV: 2, headDim: 64))
      == plan.rowBlocks * 2 * 3)
    #expect(plan.rowBlocks == (40 + plan.key.tile.rows - 1) / plan.key.tile.rows)
    #expect(DecodeSplitCounters.capacity * 4 == 64 * 1024)
  }

  /// One copy of the merge: both kernels include decode/merge.cuh (their compilation, spills
  /// and stack are "every KV-cache kernel variant compiles without spills", which now also
  /// builds the benchmark's L2 sweep).
  @Test("the decode kernel and the merge kernel share the merge; the catalog has the L2 sweep")
  func oneMerge() {
    let plan = DecodePlan.make(
      shape: shape, dtype: .bfloat16, options: AttentionOptions(), paged: false, maxKeys: 8192, requestedSplits: 0,
      arch: "sm_90a", multiprocessors: 132)
    let combine = DecodeCombineKey(headDimV: 128, dtype: .bfloat16)
    for source in [plan.key.program.source, combine.program.source] {
      #expect(source.contains("#include \"decode/merge.cuh\""))
      #expect(!source.contains("for (int s0 = 0; s0 < splits; s0 += 32)"), "a second copy of the merge loop")
    }
    #expect(KernelSources.text("decode/merge.cuh").contains("merge_split_row"))
    #expect(CUDAKernelCatalog.decodeKeys(arch: "sm_80").contains { $0 is L2SweepKey })
  }
}

/// The fused merge on the GPU against the merge kernel: the same bits of O and the LSE on
/// ragged, empty, masked, paged, GQA and d_v > 128 problems with 5 to 64 splits (past one warp of
/// splits), NaN in every unused cache slot; every counter back at 0 after each call; and a
/// second fused call giving the first one's bits (it found the counters reset).
@Suite("KV cache on CUDA, fused split merge (GPU)")
struct KVCacheFusedMergeGPUTests {
  struct Problem: CustomStringConvertible, Sendable {
    var name: String
    var batch: Int, seqlenQ: Int, headsQ: Int, headsKV: Int, dim: Int, dimV: Int
    var lengths: [Int]
    var capacity: Int
    /// nil: contiguous.
    var pageSize: Int?
    var splits: Int
    var causal = false
    var dtype = DType.bfloat16
    var description: String { name }
  }

  static let problems: [Problem] = [
    Problem(
      name: "batch 1, 4k, GQA 32/8, d 128, automatic splits", batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, dim: 128,
      dimV: 128, lengths: [4096], capacity: 4096, pageSize: nil, splits: 0),
    Problem(
      name: "ragged with an empty sequence, 2 queries, causal, 7 splits, fp16", batch: 3, seqlenQ: 2, headsQ: 8,
      headsKV: 2, dim: 64, dimV: 64, lengths: [0, 1000, 777], capacity: 1100, pageSize: nil, splits: 7, causal: true,
      dtype: .float16),
    Problem(
      name: "d 256 (the merge's d_v > 128 loop), 40 splits", batch: 2, seqlenQ: 1, headsQ: 4, headsKV: 1, dim: 256,
      dimV: 256, lengths: [3000, 1234], capacity: 3000, pageSize: nil, splits: 40),
    Problem(
      name: "pages of 16, 5 queries × group 8 (several row blocks), 64 splits, fp16", batch: 2, seqlenQ: 5, headsQ: 16,
      headsKV: 2, dim: 128, dimV: 128, lengths: [2048, 1500], capacity: 2048, pageSize: 16, splits: 64, dtype: .float16),
    Problem(
      name: "pages of 1, d 192 / d_v 128, 5 splits", batch: 1, seqlenQ: 1, headsQ: 8, headsKV: 8, dim: 192, dimV: 128,
      lengths: [700], capacity: 700, pageSize: 1, splits: 5),
  ]

  /// O and the LSE of `problem` (host views, so the call is staged and synchronous) on `backend`.
  func run(_ problem: Problem, seed: UInt64, on backend: CUDABackend) throws -> (HostTensor, HostTensor, DecodePlan) {
    var random = TestRandom(seed: seed)
    let rowsPerBlock = problem.pageSize ?? problem.capacity
    let blocksPerSequence = (problem.capacity + rowsPerBlock - 1) / rowsPerBlock
    let blocks = problem.batch * blocksPerSequence + 3  // three pages no table names: NaN
    let k = HostTensor(shape: [blocks, rowsPerBlock, problem.headsKV, problem.dim], dtype: problem.dtype)  // NaN
    let v = HostTensor(shape: [blocks, rowsPerBlock, problem.headsKV, problem.dimV], dtype: problem.dtype)
    // Sequence b's block j is block (b * blocksPerSequence + j) * multiplier mod blocks, with a
    // multiplier prime to blocks: a shuffled page order. Contiguous caches use row b.
    func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
    var multiplier = 7
    while gcd(multiplier, blocks) != 1 { multiplier += 2 }
    var table = [Int32](repeating: -1, count: problem.batch * blocksPerSequence)
    for b in 0..<problem.batch {
      for j in 0..<blocksPerSequence {
        table[b * blocksPerSequence + j] = Int32(problem.pageSize == nil ? b : (b * blocksPerSequence + j) * multiplier % blocks)
      }
      for t in 0..<problem.lengths[b] {
        let block = problem.pageSize == nil ? b : Int(table[b * blocksPerSequence + t / rowsPerBlock])
        let row = block * rowsPerBlock + t % rowsPerBlock
        let keys = random.normals(problem.headsKV * problem.dim)
        let values = random.normals(problem.headsKV * problem.dimV)
        for c in 0..<keys.count { k.view.storeFloat(keys[c], atElementOffset: row * keys.count + c) }
        for c in 0..<values.count { v.view.storeFloat(values[c], atElementOffset: row * values.count + c) }
      }
    }
    let q = random.tensor([problem.batch, problem.seqlenQ, problem.headsQ, problem.dim], dtype: problem.dtype)
    let out = HostTensor(shape: [problem.batch, problem.seqlenQ, problem.headsQ, problem.dimV], dtype: problem.dtype)
    let lse = HostTensor(shape: [problem.batch, problem.headsQ, problem.seqlenQ], dtype: .float32)
    let cache = KVCache(
      k: k.view, v: v.view, seqlens: IndexTensorView(problem.lengths.map { Int32($0) }),
      pageTable: problem.pageSize == nil
        ? nil : IndexTensorView(table, rows: problem.batch, columns: blocksPerSequence))
    let arguments = try KVCacheForwardArguments(
      q: q.view, cache: cache, out: out.view, lse: lse.view, options: AttentionOptions(causal: problem.causal),
      numSplits: problem.splits)
    try backend.kvCacheForward(arguments, stream: nil)
    return (out, lse, backend.decodePlan(arguments))
  }

  @Test(
    "the fused merge gives the merge kernel's bits, and leaves every counter at 0",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: problems)
  func sameBits(problem: Problem) throws {
    let seed = UInt64.random(in: 1...UInt64.max)
    let separate = try CUDABackend(device: 0, tuning: CUDAKernelTuning(decodeCombine: .separate))
    let fused = try CUDABackend(device: 0, tuning: CUDAKernelTuning(decodeCombine: .fused))
    let (outA, lseA, plan) = try run(problem, seed: seed, on: separate)
    #expect(plan.splits > 1, "\(problem): the plan has one split, nothing to merge")
    let (outB, lseB, _) = try run(problem, seed: seed, on: fused)
    let shape = AttentionShape(
      batch: problem.batch, seqlenQ: problem.seqlenQ, seqlenK: problem.capacity, headsQ: problem.headsQ,
      headsKV: problem.headsKV, headDim: problem.dim, headDimV: problem.dimV)
    let counters = try #require(
      try fused.splitCounters(plan: plan, shape: shape, stream: fused.stream), "\(problem): the fused merge did not run")
    #expect(sameBits(outA, outB), "\(problem): O differs between the separate and fused merges, seed \(seed)")
    #expect(sameBits(lseA, lseB), "\(problem): the LSE differs, seed \(seed)")
    // A sequence's rows are finite (an empty sequence's are 0, its LSE -inf): the NaN slots
    // stayed out.
    #expect(outB.floats().allSatisfy { $0.isFinite }, "\(problem): a non-finite output, seed \(seed)")
    #expect(try countersAreZero(counters, backend: fused), "\(problem): a counter is not 0 after the call")
    // Again on the same stream: the counters must have been left ready.
    let (outC, lseC, _) = try run(problem, seed: seed, on: fused)
    #expect(sameBits(outB, outC) && sameBits(lseB, lseC), "\(problem): a second fused call differs, seed \(seed)")
    #expect(try countersAreZero(counters, backend: fused), "\(problem): a counter is not 0 after the second call")
  }

  @Test(
    "the verify KV-cache matrix passes with the fused merge, with the separate merge's errors",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: KVCacheMatrix.standard.map(\.name), [DType.float16, .bfloat16])
  func matrix(name: String, dtype: DType) throws {
    let testCase = try #require(KVCacheMatrix.standard.first { $0.name == name })
    let seed = UInt64.random(in: 1...UInt64.max)
    let separate = try CUDABackend(device: 0, tuning: CUDAKernelTuning(decodeCombine: .separate))
    let fused = try CUDABackend(device: 0, tuning: CUDAKernelTuning(decodeCombine: .fused))
    let a = Verification(engine: AttentionEngine(backend: separate)).run(testCase, dtype: dtype, seed: seed)
    let b = Verification(engine: AttentionEngine(backend: fused)).run(testCase, dtype: dtype, seed: seed)
    #expect(a.passed, "\(a.summary)")
    #expect(b.passed, "fused: \(b.summary)")
    #expect(a.checks.count == b.checks.count)
    for (mine, theirs) in zip(b.checks, a.checks) {
      // Bit-identical outputs give identical errors.
      #expect(
        mine.relativeL2 == theirs.relativeL2 && mine.maxAbsolute == theirs.maxAbsolute,
        "\(name) \(mine.name): fused \(mine.relativeL2)/\(mine.maxAbsolute), separate \(theirs.relativeL2)/\(theirs.maxAbsolute), seed \(seed)")
    }
  }

  private func countersAreZero(_ address: UInt64, backend: CUDABackend) throws -> Bool {
    let api = backend.device.api
    var values = [Int32](repeating: -1, count: DecodeSplitCounters.capacity)
    try backend.device.makeCurrent()
    let status = values.withUnsafeMutableBytes { bytes in
      bytes.baseAddress.map { api.cuMemcpyDtoHAsync($0, address, bytes.count, backend.stream.handle) } ?? -1
    }
    try api.check(status, "cuMemcpyDtoHAsync")
    try backend.stream.synchronize()
    return values.allSatisfy { $0 == 0 }
  }

  private func sameBits(_ a: HostTensor, _ b: HostTensor) -> Bool {
    a.byteCount == b.byteCount && memcmp(a.storage, b.storage, a.byteCount) == 0
  }
}
