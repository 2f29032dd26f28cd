import FlashAttentionCPU
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

/// One problem to check against the float64 reference: shapes, options, dtype, and optionally
/// a strided layout (q, k, v as slices of one packed `[b, s, 3, h, d]` buffer).
struct AttentionCase: CustomStringConvertible, Sendable {
  var batch = 1
  var seqlenQ: Int
  var seqlenK: Int
  var headsQ = 2
  var headsKV = 2
  var headDim = 64
  var headDimV: Int? = nil
  var options = AttentionOptions()
  var dtype = DType.float32
  var packedQKV = false
  var threads: Int? = nil
  /// Which build of the kernels runs the case (`nil`: the one `CPUBackend` picks).
  var instructionSet: CPUInstructionSet? = nil

  var shape: AttentionShape {
    AttentionShape(
      batch: batch, seqlenQ: seqlenQ, seqlenK: seqlenK, headsQ: headsQ, headsKV: headsKV,
      headDim: headDim, headDimV: headDimV)
  }

  var description: String {
    var text = "\(shape) \(dtype)"
    if options.causal { text += " causal" }
    if let window = options.window { text += " window\(window)" }
    if options.softcap > 0 { text += " softcap=\(options.softcap)" }
    if packedQKV { text += " packed" }
    if let threads { text += " threads=\(threads)" }
    if let instructionSet { text += " \(instructionSet.rawValue)" }
    return text
  }

  /// Relative-L2 tolerance for this dtype: fp32 far under 1e-4; half precisions a few units of
  /// their roundoff (the outputs are rounded to storage once).
  var tolerance: Double {
    switch dtype {
    case .float32: 2e-5
    case .float16, .bfloat16, .float8E4M3: 6 * dtype.unitRoundoff
    }
  }
}

/// Inputs of a case, kept alive together (views may point into one packed buffer).
struct CaseInputs {
  var q: TensorView
  var k: TensorView
  var v: TensorView
  var dOut: HostTensor
  var owners: [HostTensor]

  init(_ c: AttentionCase, random: inout TestRandom) {
    let shape = c.shape
    if c.packedQKV {
      // q, k, v as slices of one [b, s, 3, h, d] buffer: non-contiguous strides.
      precondition(shape.seqlenQ == shape.seqlenK && shape.headsQ == shape.headsKV && shape.headDim == shape.headDimV)
      let packed = random.tensor([shape.batch, shape.seqlenQ, 3, shape.headsQ, shape.headDim], dtype: c.dtype)
      let strides = [shape.seqlenQ * 3 * shape.headsQ * shape.headDim, 3 * shape.headsQ * shape.headDim, shape.headDim, 1]
      func slice(_ index: Int) -> TensorView {
        TensorView(
          baseAddress: packed.storage + index * shape.headsQ * shape.headDim * c.dtype.byteSize, dtype: c.dtype,
          shape: shape.qShape, strides: strides)
      }
      q = slice(0)
      k = slice(1)
      v = slice(2)
      owners = [packed]
    } else {
      let qt = random.tensor(shape.qShape, dtype: c.dtype)
      let kt = random.tensor(shape.kShape, dtype: c.dtype)
      let vt = random.tensor(shape.vShape, dtype: c.dtype)
      q = qt.view
      k = kt.view
      v = vt.view
      owners = [qt, kt, vt]
    }
    dOut = random.tensor(shape.oShape, dtype: c.dtype)
  }
}

/// Runs forward and backward of `c` on the CPU backend and expects every output to match the
/// float64 reference, with no element left unwritten (outputs start as NaN). `beforeBackward`
/// runs between the two passes.
func expectMatchesReference(
  _ c: AttentionCase, backward: Bool = true, backend chosen: (any AttentionBackend)? = nil,
  beforeBackward: () -> Void = {}
) throws {
  var random = TestRandom()
  let seed = random.seed
  let inputs = CaseInputs(c, random: &random)
  let shape = c.shape
  let backend = try chosen ?? CPUBackend(threads: c.threads, instructionSet: c.instructionSet)

  let out = HostTensor(shape: shape.oShape, dtype: c.dtype)
  let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
  try backend.forward(
    ForwardArguments(q: inputs.q, k: inputs.k, v: inputs.v, out: out.view, lse: lse.view, options: c.options))
  let reference = try ReferenceAttention.forward(q: inputs.q, k: inputs.k, v: inputs.v, options: c.options)
  let outError = ErrorMetrics(actual: out.floats(), expected: reference.out)
  let lseError = ErrorMetrics(actual: lse.floats(), expected: reference.lse)
  #expect(outError.passes(tolerance: c.tolerance), "out \(outError) for \(c), seed \(seed)")
  #expect(lseError.passes(tolerance: 2e-6) && lseError.maxAbsolute < 1e-4, "lse \(lseError) for \(c), seed \(seed)")
  // Rows that see no key: LSE exactly -inf where the reference has -inf.
  let lseValues = lse.floats()
  for index in reference.lse.indices where reference.lse[index] == -.infinity {
    #expect(lseValues[index] == -.infinity, "row \(index) lse \(lseValues[index]) for \(c), seed \(seed)")
  }
  guard backward else { return }

  let dQ = HostTensor(shape: shape.qShape, dtype: c.dtype)
  let dK = HostTensor(shape: shape.kShape, dtype: c.dtype)
  let dV = HostTensor(shape: shape.vShape, dtype: c.dtype)
  beforeBackward()
  try backend.backward(
    BackwardArguments(
      q: inputs.q, k: inputs.k, v: inputs.v, out: out.view, lse: lse.view, dOut: inputs.dOut.view,
      dQ: dQ.view, dK: dK.view, dV: dV.view, options: c.options))
  let gradients = try ReferenceAttention.backward(
    q: inputs.q, k: inputs.k, v: inputs.v, dOut: inputs.dOut.view, options: c.options)
  // The reference differentiates its own float64 forward; half-precision O carries one
  // rounding more into D, so gradients get twice the output tolerance.
  let gradientTolerance = c.dtype == .float32 ? 5e-5 : 2 * c.tolerance
  for (name, actual, expected) in [("dQ", dQ, gradients.dQ), ("dK", dK, gradients.dK), ("dV", dV, gradients.dV)] {
    let error = ErrorMetrics(actual: actual.floats(), expected: expected)
    #expect(error.passes(tolerance: gradientTolerance), "\(name) \(error) for \(c), seed \(seed)")
  }
}
