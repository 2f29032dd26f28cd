import FlashAttention
import FlashAttentionCore
import FlashAttentionTestSupport
import Testing
@testable import FlashAttentionCUDA

/// Packed variable-length batches on the GPU (`flash_attn_varlen_func`): every case of
/// `verify`'s varlen matrix under the pass rule, and the device-resident path (index data on the
/// device, a caller's stream) against the staged host path.
@Suite("CUDA varlen kernels against the float64 reference (GPU)")
struct GPUVarlenTests {
  static let dtypes: [DType] = [.bfloat16, .float16]

  @Test(
    "varlen forward and backward pass the verify rule",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: VarlenVerificationMatrix.standard, dtypes)
  func matchesReference(_ testCase: VarlenVerificationCase, dtype: DType) throws {
    let engine = AttentionEngine(backend: try CUDABackend(device: 0), selectionReason: "GPU test")
    let result = Verification(engine: engine).run(testCase, dtype: dtype)
    #expect(result.passed, "\(result.summary)")
  }

  @Test(
    "the packed schedule (a device-written work list, longest sequence first) passes the verify rule",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: VarlenVerificationMatrix.standard, dtypes)
  func packedScheduleMatchesReference(_ testCase: VarlenVerificationCase, dtype: DType) throws {
    let backend = try CUDABackend(device: 0, tuning: CUDAKernelTuning(varlenSchedule: .packed))
    let engine = AttentionEngine(backend: backend, selectionReason: "GPU test, packed varlen schedule")
    let result = Verification(engine: engine).run(testCase, dtype: dtype)
    #expect(result.passed, "\(result.summary)")
  }

  @Test(
    "device index data on a caller's stream gives the staged path's bits, rows outside every sequence cleared",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"))
  func deviceIndexData() throws {
    let backend = try CUDABackend(device: 0)
    let device = backend.device
    let stream = try CUDAStream(device: device)
    let testCase = VarlenVerificationCase(
      "device", lengthsQ: [17, 0, 129, 7], lengthsK: [33, 9, 129, 0], usedQ: [10, 0, 129, 7], usedK: [33, 9, 100, 0],
      headsQ: 4, headsKV: 2, headDim: 64, options: AttentionOptions(causal: true), trailingRows: 3)
    var random = TestRandom()
    let dtype = DType.bfloat16
    let q = random.tensor([testCase.totalQ, 4, 64], dtype: dtype)
    let k = random.tensor([testCase.totalK, 2, 64], dtype: dtype)
    let v = random.tensor([testCase.totalK, 2, 64], dtype: dtype)
    let dOut = random.tensor([testCase.totalQ, 4, 64], dtype: dtype)
    let sequences = testCase.sequences

    // The host path (staged, index data checked on the host).
    let out = HostTensor(shape: q.shape, dtype: dtype)
    let lse = HostTensor(shape: [4, testCase.totalQ], dtype: .float32)
    let dQ = HostTensor(shape: q.shape, dtype: dtype)
    let dK = HostTensor(shape: k.shape, dtype: dtype)
    let dV = HostTensor(shape: v.shape, dtype: dtype)
    try backend.varlenForward(
      VarlenForwardArguments(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, sequences: sequences,
        options: testCase.options), stream: nil)
    try backend.varlenBackward(
      VarlenBackwardArguments(
        q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: dQ.view, dK: dK.view,
        dV: dV.view, sequences: sequences, options: testCase.options), stream: nil)

    // The device path: every tensor and the index data in device memory, outputs NaN-poisoned.
    func upload(_ tensor: HostTensor) throws -> (CUDABuffer, TensorView) {
      let buffer = try CUDABuffer(device: device, byteCount: max(tensor.byteCount, 1))
      try buffer.upload(tensor, stream: stream)
      return (buffer, buffer.view(dtype: tensor.dtype, shape: tensor.shape))
    }
    func poisoned(_ shape: [Int], _ dtype: DType) throws -> (CUDABuffer, TensorView) {
      let buffer = try CUDABuffer(device: device, byteCount: max(shape.reduce(1, *) * dtype.byteSize, 1))
      try buffer.fill(byte: 0xFF, stream: stream)
      return (buffer, buffer.view(dtype: dtype, shape: shape))
    }
    func index(_ view: IndexTensorView?) throws -> (CUDABuffer, IndexTensorView)? {
      guard let view else { return nil }
      let values = view.hostValues.map { Int32($0) }
      let buffer = try CUDABuffer(device: device, byteCount: max(values.count * 4, 4))
      // The int32 values as the bytes of a 4-byte host tensor.
      let staging = HostTensor(shape: [values.count], dtype: .float32)
      for (offset, value) in values.enumerated() { staging.storage.storeBytes(of: value, toByteOffset: offset * 4, as: Int32.self) }
      try buffer.upload(staging, stream: stream)
      let address = try #require(UnsafeMutableRawPointer(bitPattern: UInt(buffer.view(dtype: .float32, shape: [1]).deviceAddress)))
      return (buffer, IndexTensorView(baseAddress: address, shape: [values.count], location: .cuda(device: device.ordinal)))
    }
    let (qBuffer, qView) = try upload(q)
    let (kBuffer, kView) = try upload(k)
    let (vBuffer, vView) = try upload(v)
    let (doBuffer, doView) = try upload(dOut)
    let (outBuffer, outView) = try poisoned(out.shape, dtype)
    let (lseBuffer, lseView) = try poisoned(lse.shape, .float32)
    let (dqBuffer, dqView) = try poisoned(dQ.shape, dtype)
    let (dkBuffer, dkView) = try poisoned(dK.shape, dtype)
    let (dvBuffer, dvView) = try poisoned(dV.shape, dtype)
    let cuQ = try #require(try index(sequences.cuSeqlensQ))
    let cuK = try #require(try index(sequences.cuSeqlensK))
    let usedQ = try index(sequences.seqUsedQ)
    let usedK = try index(sequences.seqUsedK)
    let deviceSequences = VarlenSequences(
      cuSeqlensQ: cuQ.1, cuSeqlensK: cuK.1, maxSeqlenQ: sequences.maxSeqlenQ, maxSeqlenK: sequences.maxSeqlenK,
      seqUsedQ: usedQ?.1, seqUsedK: usedK?.1)
    let callerStream = try #require(stream.rawHandle.map { CallerStream(UnsafeMutableRawPointer($0)) })
    try backend.varlenForward(
      VarlenForwardArguments(
        q: qView, k: kView, v: vView, out: outView, lse: lseView, sequences: deviceSequences,
        options: testCase.options), stream: callerStream)
    try backend.varlenBackward(
      VarlenBackwardArguments(
        q: qView, k: kView, v: vView, out: outView, lse: lseView, dOut: doView, dQ: dqView, dK: dkView, dV: dvView,
        sequences: deviceSequences, options: testCase.options), stream: callerStream)
    try stream.synchronize()
    for (name, buffer, expected) in [
      ("out", outBuffer, out), ("lse", lseBuffer, lse), ("dq", dqBuffer, dQ), ("dk", dkBuffer, dK), ("dv", dvBuffer, dV),
    ] {
      let actual = HostTensor(shape: expected.shape, dtype: expected.dtype)
      try buffer.download(actual, stream: stream)
      // The same kernels on the same inputs: the same results (dq up to the order of its fp32
      // additions, which varies between runs); -inf LSE entries must match exactly.
      var actualValues = actual.floats()
      var expectedValues = expected.floats()
      if name == "lse" {
        #expect(zip(actualValues, expectedValues).allSatisfy { ($0 == -.infinity) == ($1 == -.infinity) }, "lse -inf pattern")
        actualValues = actualValues.map { $0 == -.infinity ? 0 : $0 }
        expectedValues = expectedValues.map { $0 == -.infinity ? 0 : $0 }
      }
      let metrics = ErrorMetrics(actual: actualValues, expected: expectedValues.map(Double.init))
      #expect(metrics.passes(tolerance: name == "dq" ? 1e-2 : 1e-6), "\(name): \(metrics)")
    }
    // Rows past seqused and after the last sequence: 0 (LSE -inf), as on the CPU.
    let lseValues = lse.floats()
    for row in 10..<17 { #expect(lseValues[row] == -.infinity, "lse row \(row)") }
    for row in (testCase.totalQ - 3)..<testCase.totalQ { #expect(lseValues[row] == -.infinity, "lse tail row \(row)") }
    let outValues = out.floats()
    #expect(outValues[(10 * 4 * 64)..<(17 * 4 * 64)].allSatisfy { $0 == 0 })
    let dkValues = dK.floats()
    let keyTail = (33 + 9 + 100) * 2 * 64
    #expect(dkValues[keyTail..<((33 + 9 + 129) * 2 * 64)].allSatisfy { $0 == 0 }, "dk past seqused_k")
    withExtendedLifetime([qBuffer, kBuffer, vBuffer, doBuffer, cuQ.0, cuK.0]) {}
    withExtendedLifetime([usedQ?.0, usedK?.0]) {}
  }
}
