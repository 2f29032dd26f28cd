import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// The CUDA call paths' own checks, without a GPU: every input the kernels cannot take is a
/// typed error, never a trap (the sizes are checked before any Int32 conversion).
@Suite("CUDA call checks (no GPU)")
struct CallChecksTests {
  func expectUnsupported(_ body: () throws -> Void, _ comment: Comment) {
    do {
      try body()
      Issue.record("no error: \(comment)")
    } catch {
      guard case .unsupported? = error as? FlashAttentionError else {
        Issue.record("expected .unsupported, got \(error): \(comment)")
        return
      }
    }
  }

  @Test("storage, head dims and sizes the kernels cannot take are .unsupported")
  func problems() {
    let fine = AttentionShape(batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 4, headsKV: 2, headDim: 64)
    #expect(throws: Never.self) { try CUDACallChecks.problem(fine, dtype: .bfloat16, backend: "cuda:0") }
    expectUnsupported({ try CUDACallChecks.problem(fine, dtype: .float32, backend: "cuda:0") }, "fp32")
    let cases: [(AttentionShape, String)] = [
      (AttentionShape(batch: 1, seqlenQ: 8, seqlenK: 8, headsQ: 1, headDim: 12), "d = 12"),
      (AttentionShape(batch: 1, seqlenQ: 8, seqlenK: 8, headsQ: 1, headDim: 264), "d = 264"),
      (AttentionShape(batch: 1, seqlenQ: (1 << 29) + 1, seqlenK: 8, headsQ: 1, headDim: 64), "seqlen_q past 2^29"),
      (AttentionShape(batch: 1, seqlenQ: 8, seqlenK: Int(Int32.max) + 5, headsQ: 1, headDim: 64), "seqlen_k past Int32"),
      (AttentionShape(batch: 70_000, seqlenQ: 8, seqlenK: 8, headsQ: 1, headDim: 64), "batch past 65535"),
      (AttentionShape(batch: 1, seqlenQ: 8, seqlenK: 8, headsQ: 1 << 17, headsKV: 1, headDim: 64), "heads past 65535"),
    ]
    for (shape, label) in cases {
      expectUnsupported({ try CUDACallChecks.problem(shape, dtype: .float16, backend: "cuda:0") }, "\(label)")
    }
  }

  @Test("an enqueue takes aligned device views of its own device")
  func deviceViews() throws {
    let q = try #require(TensorView(devicePointer: 1 << 20, device: 0, dtype: .bfloat16, shape: [1, 8, 2, 64]))
    #expect(throws: Never.self) {
      try CUDACallChecks.deviceViews([(q, "q")], location: q.location, ordinal: 0, backend: "cuda:0")
    }
    expectUnsupported(
      { try CUDACallChecks.deviceViews([(q, "q")], location: .host, ordinal: 0, backend: "cuda:0") }, "host memory")
    do {
      try CUDACallChecks.deviceViews([(q, "q")], location: .cuda(device: 1), ordinal: 0, backend: "cuda:0")
      Issue.record("a view of cuda:1 passed on cuda:0")
    } catch {
      guard case let .invalidArgument(name, _, _) = error else {
        Issue.record("expected .invalidArgument, got \(error)")
        return
      }
      #expect(name == "q.location")
    }
    let misaligned = try #require(TensorView(devicePointer: (1 << 20) + 2, dtype: .bfloat16, shape: [1, 8, 2, 64]))
    expectUnsupported(
      { try CUDACallChecks.deviceViews([(misaligned, "k")], location: .cuda(device: 0), ordinal: 0, backend: "cuda:0") },
      "a base that is not 16-byte aligned")
    let oddStrides = try #require(
      TensorView(devicePointer: 1 << 20, dtype: .bfloat16, shape: [1, 8, 2, 60], strides: [8 * 2 * 60, 2 * 60, 60, 1]))
    expectUnsupported(
      { try CUDACallChecks.deviceViews([(oddStrides, "v")], location: .cuda(device: 0), ordinal: 0, backend: "cuda:0") },
      "rows 120 bytes apart")
    #expect(throws: FlashAttentionError.self) { try CUDACallChecks.stream(ordinal: 1, backendOrdinal: 0) }
  }

  @Test("window bounds past Int32 reach the kernels as unbounded (-1) instead of trapping")
  func windowClamp() throws {
    // AttentionMask drops a bound past every key (left > seqlen_k, right > seqlen_q) as unbounded.
    let mask = AttentionMask(
      options: AttentionOptions(window: SlidingWindow(left: Int.max, right: Int(Int32.max) + 7)), seqlenQ: 100,
      seqlenK: 50)
    let (left, right) = kernelWindow(mask)
    #expect(left == -1 && right == -1)
    let inside = kernelWindow(
      AttentionMask(options: AttentionOptions(window: SlidingWindow(left: 50, right: 100)), seqlenQ: 100, seqlenK: 50))
    #expect(inside.left == 50 && inside.right == 100)
    let unbounded = kernelWindow(AttentionMask(options: AttentionOptions(), seqlenQ: 4, seqlenK: 4))
    #expect(unbounded.left == -1 && unbounded.right == -1)
  }
}
