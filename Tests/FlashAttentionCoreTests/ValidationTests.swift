import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// Every bad input is a typed error naming the argument; nothing crashes.
@Suite("Validation: bad arguments are typed errors naming the argument")
struct ValidationTests {
  /// Tensors for `shape`, with one of them optionally replaced.
  struct Problem {
    var q: HostTensor
    var k: HostTensor
    var v: HostTensor

    init(_ shape: AttentionShape, dtype: DType = .float32) {
      q = HostTensor(shape: shape.qShape, dtype: dtype)
      k = HostTensor(shape: shape.kShape, dtype: dtype)
      v = HostTensor(shape: shape.vShape, dtype: dtype)
    }

    func forward(out: [Int]? = nil, options: AttentionOptions = AttentionOptions()) throws(FlashAttentionError) {
      let shape = try ForwardArguments.inferredShape(q: q.view, k: k.view, v: v.view)
      let outTensor = HostTensor(shape: out ?? shape.oShape, dtype: q.dtype)
      let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
      _ = try ForwardArguments(q: q.view, k: k.view, v: v.view, out: outTensor.view, lse: lse.view, options: options)
    }
  }

  static let shape = AttentionShape(batch: 2, seqlenQ: 5, seqlenK: 7, headsQ: 4, headsKV: 2, headDim: 8)

  /// Asserts that `body` throws `.invalidArgument` naming `name`.
  func expectInvalid(_ name: String, _ body: () throws(FlashAttentionError) -> Void) {
    do {
      try body()
      Issue.record("expected an invalid-argument error for \(name)")
    } catch {
      guard case let .invalidArgument(actualName, _, _) = error else {
        Issue.record("expected invalidArgument for \(name), got \(error)")
        return
      }
      #expect(actualName == name, "\(error)")
    }
  }

  @Test("a valid problem passes")
  func valid() throws {
    try Problem(Self.shape).forward()
  }

  @Test("wrong rank of q, k or v")
  func wrongRank() {
    var problem = Problem(Self.shape)
    problem.q = HostTensor(shape: [5, 4, 8], dtype: .float32)
    expectInvalid("q.shape") { () throws(FlashAttentionError) in try problem.forward() }
    problem = Problem(Self.shape)
    problem.k = HostTensor(shape: [2, 7, 2, 8, 1], dtype: .float32)
    expectInvalid("k.shape") { () throws(FlashAttentionError) in try problem.forward() }
  }

  @Test("mismatched batch, head_dim, seqlen and heads of K and V")
  func mismatches() {
    var problem = Problem(Self.shape)
    problem.k = HostTensor(shape: [3, 7, 2, 8], dtype: .float32)
    expectInvalid("k.shape[0]") { () throws(FlashAttentionError) in try problem.forward() }
    problem = Problem(Self.shape)
    problem.k = HostTensor(shape: [2, 7, 2, 16], dtype: .float32)
    expectInvalid("k.shape[3]") { () throws(FlashAttentionError) in try problem.forward() }
    problem = Problem(Self.shape)
    problem.v = HostTensor(shape: [2, 6, 2, 8], dtype: .float32)
    expectInvalid("v.shape[1]") { () throws(FlashAttentionError) in try problem.forward() }
    problem = Problem(Self.shape)
    problem.v = HostTensor(shape: [2, 7, 1, 8], dtype: .float32)
    expectInvalid("v.shape[2]") { () throws(FlashAttentionError) in try problem.forward() }
  }

  @Test("heads_q must be a multiple of heads_kv")
  func groupedHeads() {
    let problem = Problem(AttentionShape(batch: 1, seqlenQ: 3, headsQ: 3, headsKV: 2, headDim: 8))
    expectInvalid("heads_q") { () throws(FlashAttentionError) in try problem.forward() }
  }

  @Test("dtype mismatch and a wrong output shape")
  func dtypesAndOutput() {
    var problem = Problem(Self.shape)
    problem.v = HostTensor(shape: Self.shape.vShape, dtype: .float16)
    expectInvalid("v.dtype") { () throws(FlashAttentionError) in try problem.forward() }
    problem = Problem(Self.shape)
    expectInvalid("out.shape") { () throws(FlashAttentionError) in try problem.forward(out: [2, 5, 4, 9]) }
  }

  @Test("non-finite or non-positive scale", arguments: [Float.nan, .infinity, -.infinity, 0, -1])
  func badScale(scale: Float) {
    let problem = Problem(Self.shape)
    expectInvalid("scale") { () throws(FlashAttentionError) in try problem.forward(options: AttentionOptions(scale: scale)) }
  }

  @Test("negative or non-finite softcap", arguments: [Float(-1), -.ulpOfOne, .nan, .infinity])
  func badSoftcap(softcap: Float) {
    let problem = Problem(Self.shape)
    expectInvalid("softcap") { () throws(FlashAttentionError) in
      try problem.forward(options: AttentionOptions(softcap: softcap))
    }
  }

  @Test("negative window bounds")
  func badWindow() {
    let problem = Problem(Self.shape)
    expectInvalid("window.left") { () throws(FlashAttentionError) in
      try problem.forward(options: AttentionOptions(window: SlidingWindow(left: -2, right: 0)))
    }
    expectInvalid("window.right") { () throws(FlashAttentionError) in
      try problem.forward(options: AttentionOptions(window: SlidingWindow(left: nil, right: -1)))
    }
  }

  @Test("a last stride other than 1")
  func badStride() {
    let problem = Problem(Self.shape)
    let q = TensorView(
      baseAddress: problem.q.storage, dtype: .float32, shape: [2, 5, 4, 4], strides: [160, 32, 8, 2])
    let shape = Self.shape
    let out = HostTensor(shape: [2, 5, 4, 8], dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    expectInvalid("q.strides") { () throws(FlashAttentionError) in
      _ = try ForwardArguments(
        q: q, k: problem.k.view, v: problem.v.view, out: out.view, lse: lse.view, options: AttentionOptions())
    }
  }

  @Test("empty sequences are valid problems")
  func emptySequences() throws {
    try Problem(AttentionShape(batch: 1, seqlenQ: 0, seqlenK: 4, headsQ: 2, headDim: 8)).forward()
    try Problem(AttentionShape(batch: 1, seqlenQ: 3, seqlenK: 0, headsQ: 2, headDim: 8)).forward()
  }
}
