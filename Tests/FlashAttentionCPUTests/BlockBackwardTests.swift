import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// The backward's contract: P comes from the LSE it is given. Ring attention and split keys call
/// it on one block of keys with the whole softmax's O and LSE, and add the blocks' gradients; at
/// large scores (|LSE| past the threshold where the CPU backward recomputes row statistics) the
/// recomputed statistics must not replace a given LSE that belongs to more keys than the call has.
@Suite("CPU backward of one key block with the whole softmax's LSE")
struct BlockBackwardTests {
  static let shape = AttentionShape(batch: 1, seqlenQ: 37, seqlenK: 50, headsQ: 2, headsKV: 2, headDim: 32)
  static let split = 29

  /// The backward of keys [0, split) and [split, seqlen_k), each given the whole problem's O and
  /// LSE: dQ summed over the blocks, dK and dV concatenated.
  static func blockGradients(
    q: HostTensor, k: HostTensor, v: HostTensor, dOut: HostTensor, shape: AttentionShape, split: Int,
    options: AttentionOptions, backend: CPUBackend
  ) throws -> (dQ: [Float], dK: [Float], dV: [Float]) {
    let out = HostTensor(shape: shape.oShape, dtype: .float32)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    try backend.forward(ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options))
    var dQ = [Float](repeating: 0, count: q.elementCount)
    var dK: [Float] = []
    var dV: [Float] = []
    let rowFloats = shape.headsKV * shape.headDim
    for keys in [0..<split, split..<shape.seqlenK] {
      let blockShape = [1, keys.count, shape.headsKV, shape.headDim]
      let kBlock = HostTensor(Array(k.floats()[keys.lowerBound * rowFloats..<keys.upperBound * rowFloats]), shape: blockShape)
      let vBlock = HostTensor(Array(v.floats()[keys.lowerBound * rowFloats..<keys.upperBound * rowFloats]), shape: blockShape)
      let dQBlock = HostTensor(shape: shape.qShape, dtype: .float32)
      let dKBlock = HostTensor(shape: blockShape, dtype: .float32)
      let dVBlock = HostTensor(shape: blockShape, dtype: .float32)
      try backend.backward(
        BackwardArguments(
          q: q.view, k: kBlock.view, v: vBlock.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQBlock.view,
          dK: dKBlock.view, dV: dVBlock.view, options: options))
      dQ = zip(dQ, dQBlock.floats()).map { $0 + $1 }
      dK += dKBlock.floats()
      dV += dVBlock.floats()
    }
    return (dQ, dK, dV)
  }

  /// `sharedScore` nil: ordinary scores, |LSE| below the threshold. 96: one head dim shared by
  /// every query and key adds 96 to every score (the softmax is unchanged), so |LSE| passes the
  /// threshold in every row while no row is near-one-hot. (Near-one-hot rows at such |LSE| are
  /// not a fair test of blocks: a float32 LSE near 100 resolves only about 2^-19 of a row's mass,
  /// and their dS is made of less; the exact test below covers them.) The bound is 1e-4
  /// relative L2: P from the given float32 LSE carries half a unit in its last place (6e-6
  /// relative at 100); 12 runs measured 3e-6 to 5e-6 (3e-7 without the shared dim). Taking the block's own recomputed statistics
  /// instead gives errors of order 1.
  @Test("blocks' gradients add up to the whole problem's (float64 reference, 1e-4)",
    arguments: CPUInstructionSet.supported, [Float?.none, 96])
  func blocksAddUp(_ instructionSet: CPUInstructionSet, _ sharedScore: Float?) throws {
    let shape = Self.shape
    let seed = UInt64.random(in: 1...UInt64.max)
    var random = TestRandom(seed: seed)
    let q = random.tensor(shape.qShape)
    let k = random.tensor(shape.kShape)
    let v = random.tensor(shape.vShape)
    let dOut = random.tensor(shape.oShape)
    let options = AttentionOptions()
    if let sharedScore {
      // scale · c² = sharedScore in the last head dim of every query and key.
      let c = (sharedScore / options.resolvedScale(headDim: shape.headDim)).squareRoot()
      for tensor in [q, k] {
        var values = tensor.floats()
        for index in stride(from: shape.headDim - 1, to: values.count, by: shape.headDim) { values[index] = c }
        tensor.view.baseAddress.assumingMemoryBound(to: Float.self).update(from: values, count: values.count)
      }
    }
    let backend = try CPUBackend(threads: 2, instructionSet: instructionSet)
    let blocks = try Self.blockGradients(
      q: q, k: k, v: v, dOut: dOut, shape: shape, split: Self.split, options: options, backend: backend)
    let exact = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    for (name, actual, reference) in [("dq", blocks.dQ, exact.dQ), ("dk", blocks.dK, exact.dK), ("dv", blocks.dV, exact.dV)] {
      let error = ErrorMetrics(actual: actual, expected: reference)
      #expect(
        error.nonFiniteCount == 0 && error.relativeL2 <= 1e-4,
        "\(name) \(error), shared score \(sharedScore.map { "\($0)" } ?? "none"), \(instructionSet), seed \(seed)")
    }
  }

  /// One query, scores 70, 59 | 59 with a split after the second key: the second block's key
  /// holds e^-11 (1.7e-5) of the row, which moves the LSE by less than 2^-20 of it, so the first
  /// block's recomputed LSE matches the given one within a few units in its last place. But the
  /// row is near-one-hot and its dS is made of exactly such shares: with dP = (0, 1, 2) the
  /// whole row's D is 3r, the first block's own 1r, and its dS for the largest key −3r against
  /// −1r: dQ and dK off by two thirds. D = rowsum(dO ∘ O) tells them apart (2r against O's
  /// rounding of about 1e-10), and the block must keep the given statistics. Exact to the given
  /// LSE's rounding (4e-6 relative at 70): bound 1e-4.
  @Test("a block with the larger share of a near-one-hot row keeps the given statistics",
    arguments: CPUInstructionSet.supported)
  func nearOneHotRowKeepsGivenStatistics(_ instructionSet: CPUInstructionSet) throws {
    let shape = AttentionShape(batch: 1, seqlenQ: 1, seqlenK: 3, headsQ: 1, headsKV: 1, headDim: 4)
    func row(_ values: [Float]) -> [Float] { values + [Float](repeating: 0, count: shape.headDim - values.count) }
    let q = HostTensor(row([1]), shape: shape.qShape)
    let k = HostTensor(row([70]) + row([59]) + row([59]), shape: shape.kShape)
    let v = HostTensor(row([1, 0, 0]) + row([0, 1, 0]) + row([0, 0, 1]), shape: shape.vShape)
    let dOut = HostTensor(row([0, 1, 2]), shape: shape.oShape)
    let options = AttentionOptions(scale: 1)
    let backend = try CPUBackend(threads: 2, instructionSet: instructionSet)
    let blocks = try Self.blockGradients(
      q: q, k: k, v: v, dOut: dOut, shape: shape, split: 2, options: options, backend: backend)
    let exact = try ReferenceAttention.backward(q: q.view, k: k.view, v: v.view, dOut: dOut.view, options: options)
    for (name, actual, reference) in [("dq", blocks.dQ, exact.dQ), ("dk", blocks.dK, exact.dK), ("dv", blocks.dV, exact.dV)] {
      let error = ErrorMetrics(actual: actual, expected: reference)
      #expect(error.nonFiniteCount == 0 && error.relativeL2 <= 1e-4, "\(name) \(error), \(instructionSet)")
    }
  }
}
