import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// Sizes and bounds at the ends of `Int`: each is a typed error or an exact answer, never an
/// arithmetic trap (the C interface and the Python package reach these checks too).
@Suite("Hostile sizes: overflowing shapes, strides, window bounds and allocations")
struct HostileSizeTests {
  /// Storage for views that claim more than it holds: validation must refuse them before anyone
  /// reads through them.
  static let storage = HostTensor(shape: [64], dtype: .float32)

  static func view(_ shape: [Int], strides: [Int]? = nil) -> TensorView {
    TensorView(baseAddress: storage.storage, dtype: .float32, shape: shape, strides: strides)
  }

  /// The invalid-argument name `body` throws, or nil (recording an issue) when it does not.
  func invalidName(_ body: () throws(FlashAttentionError) -> Void) -> String? {
    do {
      try body()
      Issue.record("accepted")
    } catch {
      if case let .invalidArgument(name, _, _) = error { return name }
      Issue.record("expected invalidArgument, got \(error)")
    }
    return nil
  }

  static let twoTo40 = 1 << 40

  @Test(
    "shapes whose sizes multiply past Int.max are refused, empty or not",
    arguments: [
      [0, twoTo40, twoTo40, 8],  // no elements, but no row-major strides either
      [twoTo40, twoTo40, 1, 8],
      [1, 1 << 62, 1, 1],
      [1, 1, 1 << 61, 1],
    ])
  func overflowingShapes(shape: [Int]) {
    let q = Self.view(shape)
    let kv = Self.view([shape[0], 1, 1, shape[3]])
    let name = invalidName { () throws(FlashAttentionError) in
      _ = try ForwardArguments.inferredShape(q: q, k: kv, v: kv)
    }
    #expect(name == "q.shape" || name == "out.shape" || name == "lse.shape", "\(String(describing: name))")
  }

  @Test("strides whose extent overflows are refused")
  func overflowingStrides() {
    let q = Self.view([2, 3, 1, 8], strides: [Int.max / 2, 8, 8, 1])
    let kv = Self.view([2, 3, 1, 8])
    #expect(invalidName { () throws(FlashAttentionError) in _ = try ForwardArguments.inferredShape(q: q, k: kv, v: kv) } == "q.strides")
    // Also when an axis is empty: the other axes still address partial rows.
    let empty = Self.view([2, 0, 1 << 30, 8], strides: [0, 8, 1 << 40, 1])
    let emptyKV = Self.view([2, 0, 1, 8])
    #expect(
      invalidName { () throws(FlashAttentionError) in _ = try ForwardArguments.inferredShape(q: empty, k: emptyKV, v: emptyKV) }
        == "q.strides")
  }

  @Test("a negative size is refused by name")
  func negativeSize() {
    let q = Self.view([1, -3, 1, 8], strides: [8, 8, 8, 1])
    let kv = Self.view([1, 1, 1, 8])
    #expect(invalidName { () throws(FlashAttentionError) in _ = try ForwardArguments.inferredShape(q: q, k: kv, v: kv) } == "q.shape[1]")
  }

  @Test("element counts and strides of a view never trap")
  func viewArithmetic() {
    #expect(TensorView.contiguousStrides(for: [Self.twoTo40, Self.twoTo40, 8]).allSatisfy { $0 > 0 })
    #expect(Self.view([0, Self.twoTo40, Self.twoTo40, 8]).elementCount == 0)
    #expect(Self.view([Self.twoTo40, Self.twoTo40, Self.twoTo40]).elementCount == Int.max)
  }

  @Test(
    "window bounds up to Int.max see exactly what an unbounded window sees",
    arguments: [(5, 3), (3, 5), (9, 1), (1, 9)])
  func hugeWindowBounds(seqlenQ: Int, seqlenK: Int) {
    for causal in [false, true] {
      for bound in [Int.max, Int.max - 1, seqlenQ + seqlenK + 1] {
        let huge = AttentionMask(
          options: AttentionOptions(causal: causal, window: SlidingWindow(left: bound, right: bound)),
          seqlenQ: seqlenQ, seqlenK: seqlenK)
        let unbounded = AttentionMask(options: AttentionOptions(causal: causal), seqlenQ: seqlenQ, seqlenK: seqlenK)
        for i in 0..<seqlenQ {
          #expect(huge.visibleKeys(forQuery: i) == unbounded.visibleKeys(forQuery: i), "row \(i), bound \(bound)")
        }
        #expect(huge.visibleKeys(forQueries: 0..<seqlenQ) == unbounded.visibleKeys(forQueries: 0..<seqlenQ))
        #expect(
          huge.isFullyVisible(queries: 0..<seqlenQ, keys: 0..<seqlenK)
            == unbounded.isFullyVisible(queries: 0..<seqlenQ, keys: 0..<seqlenK))
        #expect(huge.visibleScoreCount == unbounded.visibleScoreCount)
      }
    }
  }

  @Test("a bound reaching exactly to the end stays as given")
  func boundsAtTheEdge() {
    let mask = AttentionMask(
      options: AttentionOptions(window: SlidingWindow(left: 3, right: 5)), seqlenQ: 5, seqlenK: 3)
    #expect(mask.left == 3 && mask.right == 5)
    let causalNoQueries = AttentionMask(options: AttentionOptions(causal: true), seqlenQ: 0, seqlenK: 4)
    #expect(causalNoQueries.right == 0)
  }

  @Test("a checked HostTensor refuses bad shapes by name")
  func checkedHostTensorShapes() {
    for (shape, expected) in [([2, -1], "out.shape[1]"), ([0, Self.twoTo40, Self.twoTo40, 8], "out.shape")] {
      #expect(
        invalidName { () throws(FlashAttentionError) in _ = try HostTensor(shape: shape, dtype: .float32, name: "out") }
          == expected)
    }
  }

  @Test("a HostTensor from user values refuses a count that does not fill the shape, and converts one that does")
  func checkedHostTensorValues() throws {
    #expect(
      invalidName { () throws(FlashAttentionError) in _ = try HostTensor([1, 2, 3], shape: [2, 2], name: "q") } == "q")
    #expect(
      invalidName { () throws(FlashAttentionError) in _ = try HostTensor([1], shape: [2, -1], name: "q") }
        == "q.shape[1]")
    let tensor = try HostTensor([1, -2.5, 3, 0.5], shape: [2, 2], dtype: .bfloat16, name: "q")
    #expect((0..<4).map { tensor.view.loadFloat(atElementOffset: $0) } == [1, -2.5, 3, 0.5])
  }

  @Test("an allocation larger than the memory left is a typed out-of-memory error")
  func checkedHostTensorMemory() {
    // 2^52 bytes (4 PiB): more than any machine's memory, yet a valid shape.
    do {
      _ = try HostTensor(shape: [1 << 20, 1 << 30], dtype: .float32, name: "out")
      Issue.record("a 4 PiB allocation succeeded")
    } catch {
      guard case let .outOfMemory(bytes, context) = error else {
        Issue.record("expected outOfMemory, got \(error)")
        return
      }
      #expect(bytes == 1 << 52 && context.hasPrefix("out"), "\(error)")
    }
  }

  @Test("FLOP counts of huge problems saturate instead of trapping")
  func flopCounts() {
    let shape = AttentionShape(batch: 1 << 40, seqlenQ: 1 << 40, headsQ: 1 << 40, headDim: 8)
    let mask = AttentionMask(options: AttentionOptions(), seqlenQ: 1 << 40, seqlenK: 1 << 40)
    #expect(mask.visibleScoreCount == Int.max)
    #expect(shape.forwardFLOPs(visibleScores: mask.visibleScoreCount) > 0)
  }
}
