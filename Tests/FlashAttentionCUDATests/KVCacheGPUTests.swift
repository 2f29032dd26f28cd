#if canImport(Glibc)
  import Glibc
#endif
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// KV-cache inference on the GPU (`flash_attn_with_kvcache`): the `verify` matrix (contiguous
/// and paged caches of page sizes 1 to 256, appends, cache_batch_idx, several query tokens,
/// masks, GQA, splits 1/auto/7/200, NaN in every unused slot and page), the device path on a
/// caller's stream against the staged one, and a NaN in a cached key reaching its rows through
/// the split merge.
@Suite("KV cache on CUDA (GPU)")
struct KVCacheGPUTests {
  static let dtypes: [DType] = [.float16, .bfloat16]

  @Test(
    "the verify matrix passes FlashAttention's rule against float64",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: KVCacheMatrix.standard.map(\.name), dtypes)
  func matrix(name: String, dtype: DType) throws {
    let testCase = try #require(KVCacheMatrix.standard.first { $0.name == name })
    let engine = AttentionEngine(backend: try CUDABackend(device: 0))
    let result = Verification(engine: engine).run(testCase, dtype: dtype)
    #expect(result.passed, "\(result.summary)")
  }

  /// One paged problem: host data and the device copies of the cache, index data and outputs.
  struct PagedProblem {
    let batch = 3, queries = 2, headsQ = 8, headsKV = 2, dim = 64, pageSize = 16, newTokens = 2
    let cached = [40, 0, 97]
    var pagesPerSequence: Int { (cached.reduce(0, max) + newTokens + pageSize - 1) / pageSize + 1 }
    var blocks: Int { batch * pagesPerSequence + 2 }
    let kCache: HostTensor, vCache: HostTensor, kNew: HostTensor, vNew: HostTensor, q: HostTensor
    let table: [Int32]

    init(random: inout TestRandom, dtype: DType) {
      let pages = (cached.reduce(0, max) + newTokens + pageSize - 1) / pageSize + 1
      let blocks = cached.count * pages + 2
      kCache = HostTensor(shape: [blocks, pageSize, headsKV, dim], dtype: dtype)  // NaN
      vCache = HostTensor(shape: [blocks, pageSize, headsKV, dim], dtype: dtype)
      // Sequence b's pages run backwards from the end: page p of b is blocks - 1 - (b * pages + p).
      var table = [Int32](repeating: -3, count: cached.count * pages)
      for b in 0..<cached.count {
        for p in 0..<((cached[b] + newTokens + pageSize - 1) / pageSize) {
          table[b * pages + p] = Int32(blocks - 1 - (b * pages + p))
        }
        for t in 0..<cached[b] {
          let row = Int(table[b * pages + t / pageSize]) * pageSize + t % pageSize
          for c in 0..<(headsKV * dim) {
            kCache.view.storeFloat(random.normals(1)[0], atElementOffset: row * headsKV * dim + c)
            vCache.view.storeFloat(random.normals(1)[0], atElementOffset: row * headsKV * dim + c)
          }
        }
      }
      self.table = table
      kNew = random.tensor([cached.count, newTokens, headsKV, dim], dtype: dtype)
      vNew = random.tensor([cached.count, newTokens, headsKV, dim], dtype: dtype)
      q = random.tensor([cached.count, queries, headsQ, dim], dtype: dtype)
    }
  }

  @Test(
    "device memory on a caller's stream gives the staged call's bits (append included)",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"))
  func callerStreamMatchesStaged() throws {
    var random = TestRandom()
    let dtype = DType.bfloat16
    let problem = PagedProblem(random: &random, dtype: dtype)
    let backend = try CUDABackend(device: 0)
    let device = backend.device
    let options = AttentionOptions(causal: true)
    let outShape = [problem.batch, problem.queries, problem.headsQ, problem.dim]
    let lseShape = [problem.batch, problem.headsQ, problem.queries]

    // Device run first, on copies of the host cache (the staged run appends to its own).
    let stream = try CUDAStream(device: device)
    func buffer(_ tensor: HostTensor) throws -> CUDABuffer {
      let buffer = try CUDABuffer(device: device, byteCount: tensor.byteCount)
      try buffer.upload(tensor, stream: stream)
      return buffer
    }
    func indexBuffer(_ values: [Int32]) throws -> CUDABuffer {
      let host = HostTensor(shape: [values.count], dtype: .float32)
      values.withUnsafeBytes { bytes in
        if let base = bytes.baseAddress { host.storage.copyMemory(from: base, byteCount: bytes.count) }
      }
      return try buffer(host)
    }
    let kCache = try buffer(problem.kCache), vCache = try buffer(problem.vCache)
    let kNew = try buffer(problem.kNew), vNew = try buffer(problem.vNew), q = try buffer(problem.q)
    let seqlens = try indexBuffer(problem.cached.map { Int32($0) }), table = try indexBuffer(problem.table)
    let out = try CUDABuffer(device: device, byteCount: outShape.reduce(1, *) * 2)
    let lse = try CUDABuffer(device: device, byteCount: lseShape.reduce(1, *) * 4)
    try out.fill(byte: 0xFF, stream: stream)
    try lse.fill(byte: 0xFF, stream: stream)
    func index(_ buffer: CUDABuffer, _ shape: [Int]) throws -> IndexTensorView {
      IndexTensorView(
        baseAddress: try #require(UnsafeMutableRawPointer(bitPattern: UInt(buffer.address))), shape: shape,
        location: .cuda(device: device.ordinal))
    }
    let cacheShape = [problem.blocks, problem.pageSize, problem.headsKV, problem.dim]
    let newShape = [problem.batch, problem.newTokens, problem.headsKV, problem.dim]
    let deviceCache = KVCache(
      k: kCache.view(dtype: dtype, shape: cacheShape), v: vCache.view(dtype: dtype, shape: cacheShape),
      seqlens: try index(seqlens, [problem.batch]),
      pageTable: try index(table, [problem.batch, problem.pagesPerSequence]))
    try backend.kvCacheForward(
      KVCacheForwardArguments(
        q: q.view(dtype: dtype, shape: outShape), cache: deviceCache, kNew: kNew.view(dtype: dtype, shape: newShape),
        vNew: vNew.view(dtype: dtype, shape: newShape), out: out.view(dtype: dtype, shape: outShape),
        lse: lse.view(dtype: .float32, shape: lseShape), options: options, numSplits: 3),
      stream: CallerStream(UnsafeMutableRawPointer(try #require(stream.handle))))
    let deviceOut = HostTensor(shape: outShape, dtype: dtype), deviceLSE = HostTensor(shape: lseShape, dtype: .float32)
    let deviceK = HostTensor(shape: cacheShape, dtype: dtype)
    try out.download(deviceOut, stream: stream)
    try lse.download(deviceLSE, stream: stream)
    try kCache.download(deviceK, stream: stream)
    try stream.synchronize()

    let hostOut = HostTensor(shape: outShape, dtype: dtype), hostLSE = HostTensor(shape: lseShape, dtype: .float32)
    let hostCache = KVCache(
      k: problem.kCache.view, v: problem.vCache.view, seqlens: IndexTensorView(problem.cached.map { Int32($0) }),
      pageTable: IndexTensorView(problem.table, rows: problem.batch, columns: problem.pagesPerSequence))
    try backend.kvCacheForward(
      KVCacheForwardArguments(
        q: problem.q.view, cache: hostCache, kNew: problem.kNew.view, vNew: problem.vNew.view, out: hostOut.view,
        lse: hostLSE.view, options: options, numSplits: 3),
      stream: nil)
    #expect(deviceOut.floats().allSatisfy { $0.isFinite }, "seed \(random.seed)")
    #expect(sameBits(deviceOut, hostOut), "out differs between the device and staged paths, seed \(random.seed)")
    #expect(sameBits(deviceLSE, hostLSE), "lse differs, seed \(random.seed)")
    // Both appended the same tokens; unused slots (NaN) came back untouched.
    #expect(sameBits(deviceK, problem.kCache), "k_cache differs after the append, seed \(random.seed)")
  }

  @Test(
    "a NaN in a cached key reaches exactly its group's rows through the split merge",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"))
  func nanKeyReachesItsRows() throws {
    var random = TestRandom()
    let dtype = DType.float16
    let problem = PagedProblem(random: &random, dtype: dtype)
    // Token 5 of sequence 2, kv head 1.
    let row = Int(problem.table[2 * problem.pagesPerSequence]) * problem.pageSize + 5
    problem.kCache.view.storeFloat(.nan, atElementOffset: (row * problem.headsKV + 1) * problem.dim + 3)
    let backend = try CUDABackend(device: 0)
    let out = HostTensor(shape: [problem.batch, problem.queries, problem.headsQ, problem.dim], dtype: dtype)
    let lse = HostTensor(shape: [problem.batch, problem.headsQ, problem.queries], dtype: .float32)
    let cache = KVCache(
      k: problem.kCache.view, v: problem.vCache.view, seqlens: IndexTensorView(problem.cached.map { Int32($0) }),
      pageTable: IndexTensorView(problem.table, rows: problem.batch, columns: problem.pagesPerSequence))
    try backend.kvCacheForward(
      KVCacheForwardArguments(
        q: problem.q.view, cache: cache, out: out.view, lse: lse.view, options: AttentionOptions(), numSplits: 4),
      stream: nil)
    let values = out.floats()
    let group = problem.headsQ / problem.headsKV
    for b in 0..<problem.batch {
      for i in 0..<problem.queries {
        for h in 0..<problem.headsQ {
          let start = ((b * problem.queries + i) * problem.headsQ + h) * problem.dim
          let rowValues = values[start..<(start + problem.dim)]
          if b == 2 && h / group == 1 {
            #expect(rowValues.allSatisfy { $0.isNaN }, "row b=\(b) i=\(i) h=\(h) should be NaN, seed \(random.seed)")
          } else {
            #expect(rowValues.allSatisfy { $0.isFinite }, "row b=\(b) i=\(i) h=\(h) should be finite, seed \(random.seed)")
          }
        }
      }
    }
  }

  struct LargeScoreDecode: Sendable, CustomStringConvertible {
    var headDim: Int
    var queries: Int
    var dtype: DType
    /// `--decode-tile 4x3+m16`: the m16 row tile instead of the swapped one.
    var keepsM16: Bool
    var description: String { "d=\(headDim) queries=\(queries) \(dtype)\(keepsM16 ? " m16 tile" : "")" }
  }

  /// Scores up to |scale·q·k| = 1e4 (issue #16) through the decode kernel: both row tiles, one
  /// and two query tokens (4 and 8 packed rows), split over the keys; the exact-exponent form
  /// with the swapped tile's lazy max must keep the error of a same-precision standard attention.
  @Test(
    "decode with scores up to 1e4 stays within 5x a same-precision standard attention's error",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: [
      LargeScoreDecode(headDim: 128, queries: 1, dtype: .bfloat16, keepsM16: false),
      LargeScoreDecode(headDim: 64, queries: 2, dtype: .float16, keepsM16: false),
      LargeScoreDecode(headDim: 128, queries: 2, dtype: .float16, keepsM16: true),
    ])
  func largeScores(_ testCase: LargeScoreDecode) throws {
    var random = TestRandom()
    let shape = AttentionShape(
      batch: 1, seqlenQ: testCase.queries, seqlenK: 1000, headsQ: 8, headsKV: 2, headDim: testCase.headDim)
    let q = random.tensor(shape.qShape, dtype: testCase.dtype), k = random.tensor(shape.kShape, dtype: testCase.dtype)
    let v = random.tensor(shape.vShape, dtype: testCase.dtype)
    let largest = NonFiniteAndLargeScoreTests.largestScore(q: q, k: k, shape: shape)
    let options = AttentionOptions(scale: Float(1e4 / largest), causal: testCase.queries > 1)
    let label = "\(testCase), scale \(options.scale ?? 0), seed \(random.seed)"
    var tuning = CUDAKernelTuning()
    if testCase.keepsM16 { tuning.decodeTile = DecodeTuning(warps: 4, stages: 3, keepsM16: true) }
    let backend = try CUDABackend(device: 0, tuning: tuning)
    let out = HostTensor(shape: shape.oShape, dtype: testCase.dtype)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    // The whole key sequence as one contiguous cache row: the same attention as the reference's.
    let cache = KVCache(k: k.view, v: v.view, seqlens: IndexTensorView([Int32(shape.seqlenK)]))
    try backend.kvCacheForward(
      KVCacheForwardArguments(q: q.view, cache: cache, out: out.view, lse: lse.view, options: options, numSplits: 0),
      stream: nil)
    let exact = try ReferenceAttention.forward(q: q.view, k: k.view, v: v.view, options: options)
    let same = try ReferenceAttention.samePrecisionForward(q: q.view, k: k.view, v: v.view, options: options)
    for (name, actual, expected, yardstick) in [
      ("out", out.floats(), exact.out, same.out), ("lse", lse.floats(), exact.lse, same.lse),
    ] {
      NonFiniteAndLargeScoreTests.expectWithinLargeScoreRule(name, actual, expected, yardstick, label)
    }
  }

  private func sameBits(_ a: HostTensor, _ b: HostTensor) -> Bool {
    a.byteCount == b.byteCount && memcmp(a.storage, b.storage, a.byteCount) == 0
  }
}
