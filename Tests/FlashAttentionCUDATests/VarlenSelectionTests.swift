import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// Which kernels a packed (varlen) call runs, and the checks of its device views and index data
/// (no GPU: made-up, aligned device addresses that no kernel reads).
@Suite("Varlen kernel selection and call checks (no GPU)")
struct VarlenSelectionTests {
  /// Packed device views: q, k, v, out, dout, dq, dk, dv `(total, heads, dim)`, lse `(heads,
  /// total)`, cu_seqlens of `batch + 1` int32.
  struct Views {
    var q, k, v, out, lse, dOut, dQ, dK, dV: TensorView
    var sequences: VarlenSequences

    init(
      lengths: [Int], headsQ: Int = 8, headsKV: Int = 2, headDim: Int = 128, dtype: DType = .bfloat16,
      lseColumnStride: Int = 1
    ) throws {
      let total = lengths.reduce(0, +)
      var next: UInt64 = 1 << 20
      func address(_ bytes: Int) -> UInt64 {
        defer { next += UInt64(bytes + 256) / 256 * 256 }
        return next
      }
      func view(_ shape: [Int], _ dtype: DType, strides: [Int]? = nil) throws -> TensorView {
        let bytes = shape.reduce(1, *) * dtype.byteSize * (strides == nil ? 1 : lseColumnStride)
        return try #require(
          TensorView(devicePointer: address(bytes), dtype: dtype, shape: shape, strides: strides))
      }
      q = try view([total, headsQ, headDim], dtype)
      k = try view([total, headsKV, headDim], dtype)
      v = try view([total, headsKV, headDim], dtype)
      out = try view([total, headsQ, headDim], dtype)
      lse = try view([headsQ, total], .float32, strides: [total * lseColumnStride, lseColumnStride])
      dOut = try view([total, headsQ, headDim], dtype)
      dQ = try view([total, headsQ, headDim], dtype)
      dK = try view([total, headsKV, headDim], dtype)
      dV = try view([total, headsKV, headDim], dtype)
      let cu = try #require(UnsafeMutableRawPointer(bitPattern: UInt(address((lengths.count + 1) * 4))))
      let index = IndexTensorView(baseAddress: cu, shape: [lengths.count + 1], location: .cuda(device: 0))
      sequences = VarlenSequences(
        cuSeqlensQ: index, cuSeqlensK: index, maxSeqlenQ: lengths.max() ?? 0, maxSeqlenK: lengths.max() ?? 0)
    }

    func forward(_ options: AttentionOptions = AttentionOptions()) throws -> VarlenForwardArguments {
      try VarlenForwardArguments(q: q, k: k, v: v, out: out, lse: lse, sequences: sequences, options: options)
    }

    func backward(_ options: AttentionOptions = AttentionOptions()) throws -> VarlenBackwardArguments {
      try VarlenBackwardArguments(
        q: q, k: k, v: v, out: out, lse: lse, dOut: dOut, dQ: dQ, dK: dK, dV: dV, sequences: sequences,
        options: options)
    }
  }

  @Test("sm_90a runs the Hopper kernels with FA_VARLEN; sm_80 and softcap the FlashAttention-2 ones")
  func selection() throws {
    let views = try Views(lengths: [1519, 294, 4972])
    let tuning = CUDAKernelTuning()
    guard case let .hopper(forward, _) = KernelSelection.varlenForward(try views.forward(), arch: "sm_90a", tuning: tuning)
    else {
      Issue.record("sm_90a varlen forward is not the Hopper kernel")
      return
    }
    #expect(forward.varlen && forward.program.source.contains("#define FA_VARLEN 1\n"))
    let backward = KernelSelection.varlenBackward(try views.backward(AttentionOptions(causal: true)), arch: "sm_90a", tuning: tuning)
    guard case let .hopperSplit(keyValue, dq) = backward.form else {
      Issue.record("d = 128 varlen backward on sm_90a is not the split Hopper form: \(backward.form)")
      return
    }
    #expect(keyValue.varlen && dq.varlen && backward.preprocess.varlen)
    let d64 = try Views(lengths: [7, 129], headDim: 64)
    guard case let .hopperFused(_, convert) = KernelSelection.varlenBackward(try d64.backward(), arch: "sm_90a", tuning: tuning).form
    else {
      Issue.record("d = 64 varlen backward on sm_90a is not the fused Hopper form")
      return
    }
    #expect(convert.varlen && convert.tile == FlashAttention2Key.untiledConvertTile)
    // Another architecture, or softcap (the Hopper backward has no softcap): FlashAttention-2.
    guard case let .flashAttention2(sm80) = KernelSelection.varlenForward(try views.forward(), arch: "sm_80", tuning: tuning)
    else {
      Issue.record("sm_80 varlen forward is not the FlashAttention-2 kernel")
      return
    }
    #expect(sm80.varlen)
    let softcap = KernelSelection.varlenBackward(try views.backward(AttentionOptions(softcap: 5)), arch: "sm_90a", tuning: tuning)
    guard case let .flashAttention2(kv, convertKey) = softcap.form else {
      Issue.record("softcap varlen backward is not the FlashAttention-2 form")
      return
    }
    #expect(kv.varlen && convertKey.varlen && kv.softcap)
    // No keys anywhere: nothing for a TMA map to describe.
    let empty = try Views(lengths: [0, 0])
    if case .hopper = KernelSelection.varlenForward(try empty.forward(), arch: "sm_90a", tuning: tuning) {
      Issue.record("a batch without keys selected the Hopper forward")
    }
  }

  @Test("the checks refuse strided LSE columns, strided or foreign index data, and oversized batches")
  func checks() throws {
    let strided = try Views(lengths: [5, 9], lseColumnStride: 2)
    #expect(throws: FlashAttentionError.self) { try CUDACallChecks.varlenLSE(strided.lse, backend: "cuda:0") }
    let views = try Views(lengths: [5, 9])
    try CUDACallChecks.varlenLSE(views.lse, backend: "cuda:0")
    var index = views.sequences.cuSeqlensQ
    try CUDACallChecks.deviceIndex(index, "cu_seqlens_q", ordinal: 0, backend: "cuda:0")
    index.strides = [2]
    #expect(throws: FlashAttentionError.self) {
      try CUDACallChecks.deviceIndex(index, "cu_seqlens_q", ordinal: 0, backend: "cuda:0")
    }
    index.strides = [1]
    index.location = .cuda(device: 1)
    #expect(throws: FlashAttentionError.self) {
      try CUDACallChecks.deviceIndex(index, "cu_seqlens_q", ordinal: 0, backend: "cuda:0")
    }
    #expect(throws: FlashAttentionError.self) {
      try CUDACallChecks.varlenSizes(totalQ: 10, totalK: 10, batch: 65535, backend: "cuda:0")
    }
    #expect(throws: FlashAttentionError.self) {
      try CUDACallChecks.varlenSizes(totalQ: (1 << 29) + 1, totalK: 10, batch: 1, backend: "cuda:0")
    }
    try CUDACallChecks.varlenSizes(totalQ: 1 << 29, totalK: 1 << 29, batch: 65534, backend: "cuda:0")
  }

  @Test("the clear kernel runs only where some row is left out")
  func rowsLeftOut() throws {
    func spans(_ lengths: [Int], used: [Int]? = nil, total: Int) throws -> [SequenceSpan] {
      var sequences = VarlenSequences(lengthsQ: lengths, lengthsK: lengths)
      sequences.seqUsedQ = used.map { IndexTensorView($0.map { Int32($0) }) }
      sequences.seqUsedK = sequences.seqUsedQ
      return try VarlenChecks.spans(sequences, totalQ: total, totalK: total)
    }
    let full = try spans([5, 9], total: 14)
    #expect(!CUDABackend.rowsLeftOut(full, totalQ: 14, totalK: nil))
    #expect(!CUDABackend.rowsLeftOut(full, totalQ: nil, totalK: 14))
    #expect(CUDABackend.rowsLeftOut(try spans([5, 9], total: 15), totalQ: 15, totalK: nil))
    let used = try spans([5, 9], used: [5, 3], total: 14)
    #expect(CUDABackend.rowsLeftOut(used, totalQ: 14, totalK: nil))
    #expect(CUDABackend.rowsLeftOut(used, totalQ: nil, totalK: 14))
    // Device index data: unknown, so the kernel runs.
    #expect(CUDABackend.rowsLeftOut(nil, totalQ: 14, totalK: nil))
  }
}
