import FlashAttentionCUDA

/// `bench --grid varlen`: one packed batch (`VarlenLengthMix`) timed through the varlen entry
/// points, and the fixed-length batch of the same tokens and work per token
/// (`VarlenLengthMix.equivalentFixedLength`) through the ordinary ones, alternated case by case
/// on the same device. TFLOP/s count the real (unpadded) work: each sequence's own
/// `4 · h · L² · (d + d_v) / 2` (halved again under a causal mask), the papers' count per
/// sequence. `schedules`: the Hopper kernels' varlen schedules to time, each in turn before the
/// fixed-length batch of the same case (`flash-varlen` is the padded one, `flash-varlen-packed`
/// the packed one).
extension CUDABenchmarkRunner {
  package func runVarlen(
    lengths: [Int], headDims: [Int], causal: [Bool], dtypes: [DType], passes: [BenchmarkPass],
    schedules: [CUDAKernelTuning.VarlenSchedule] = [.padded]
  ) -> [BenchmarkRecord] {
    var records: [BenchmarkRecord] = []
    var seed: UInt64 = 7
    for dtype in dtypes {
      for headDim in headDims {
        let heads = max(1, 2048 / headDim)
        for isCausal in causal {
          seed &+= 97
          for schedule in schedules {
            let varlen = measureVarlen(
              lengths: lengths, heads: heads, headDim: headDim, causal: isCausal, dtype: dtype, passes: passes,
              seed: seed, schedule: schedule)
            for record in varlen { settings.progress?(record) }
            records += varlen
          }
          let tokens = lengths.reduce(0, +)
          let fixedLength = VarlenLengthMix.equivalentFixedLength(lengths)
          let fixedCase = BenchmarkCase(
            shape: AttentionShape(
              batch: max(1, (tokens + fixedLength / 2) / fixedLength), seqlenQ: fixedLength, headsQ: heads,
              headDim: headDim),
            causal: isCausal, dtype: dtype)
          let fixed = measure(fixedCase, impls: ["flash"], passes: passes, seed: seed).map { record in
            var record = record
            record.note = "fixed length with the varlen mix's tokens and work per token; " + record.note
            return record
          }
          for record in fixed { settings.progress?(record) }
          records += fixed
        }
      }
    }
    return records
  }

  func measureVarlen(
    lengths: [Int], heads: Int, headDim: Int, causal: Bool, dtype: DType, passes: [BenchmarkPass], seed: UInt64,
    schedule: CUDAKernelTuning.VarlenSchedule = .padded
  ) -> [BenchmarkRecord] {
    // This runner's backend with the schedule (the same device and stream).
    let flash = {
      var backend = self.flash
      backend.tuning.varlenSchedule = schedule
      return backend
    }()
    let maxLength = lengths.max() ?? 0
    let shapeCase = BenchmarkCase(
      shape: AttentionShape(batch: lengths.count, seqlenQ: maxLength, headsQ: heads, headDim: headDim),
      causal: causal, dtype: dtype)
    // The real work: each sequence as its own case.
    let work = lengths.map {
      BenchmarkCase(shape: AttentionShape(batch: 1, seqlenQ: $0, headsQ: heads, headDim: headDim), causal: causal, dtype: dtype)
    }
    let note = "varlen \(lengths.count) sequences \(lengths), \(lengths.reduce(0, +)) tokens; TFLOP/s on unpadded work"
    func record(_ pass: BenchmarkPass, _ status: BenchmarkStatus, _ samples: [Double] = [], extra: String = "") -> BenchmarkRecord {
      var record = BenchmarkRecord(
        backend: "cuda", impl: settings.label("flash") + "-varlen" + (schedule == .padded ? "" : "-\(schedule.rawValue)"),
        case: shapeCase, pass: pass, device: deviceName, status: status, samples: samples,
        note: (extra.isEmpty ? note : note + "; " + extra) + "; schedule \(schedule.rawValue)")
      let flops = work.reduce(0.0) { $0 + $1.flops(pass) }
      record.tflops = record.medianMs.map { flops / ($0 * 1e-3) / 1e12 }
      return record
    }
    do throws(FlashAttentionError) {
      let problem = try VarlenProblem(
        lengths: lengths, heads: heads, headDim: headDim, dtype: dtype, causal: causal,
        deterministic: settings.deterministic, device: flash.device, stream: flash.stream, seed: seed)
      var records: [BenchmarkRecord] = []
      for pass in passes {
        do throws(FlashAttentionError) {
          let forward = { () throws(FlashAttentionError) in try flash.enqueueVarlenForward(problem.forward, on: flash.stream) }
          let backward = { () throws(FlashAttentionError) in try flash.enqueueVarlenBackward(problem.backward, on: flash.stream) }
          if pass != .forward { try forward() }  // out and lse for the backward
          let body: () throws(FlashAttentionError) -> Void
          switch pass {
          case .forward: body = forward
          case .backward: body = backward
          case .forwardBackward:
            body = { () throws(FlashAttentionError) in
              try forward()
              try backward()
            }
          }
          if settings.once {
            try body()
            try flash.stream.synchronize()
            records.append(record(pass, .ok, extra: "one untimed run"))
            continue
          }
          records.append(record(pass, .ok, try timeVarlen(body)))
        } catch {
          records.append(record(pass, BenchmarkStatus(error), extra: error.description))
        }
      }
      withExtendedLifetime(problem) {}
      return records
    } catch {
      return passes.map { record($0, BenchmarkStatus(error), extra: error.description) }
    }
  }

  /// Warm-up, then every run between its own pair of events, all queued before the first wait
  /// (as `time(_:sets:stream:)`; one input set: 16k packed tokens exceed the L2 cache).
  private func timeVarlen(_ body: () throws(FlashAttentionError) -> Void) throws(FlashAttentionError) -> [Double] {
    let stream = flash.stream
    for _ in 0..<settings.warmup { try body() }
    let count = max(1, settings.repetitions)
    var starts: [CUDAEvent] = []
    var ends: [CUDAEvent] = []
    for _ in 0..<count {
      starts.append(try CUDAEvent(device: flash.device))
      ends.append(try CUDAEvent(device: flash.device))
    }
    try stream.synchronize()
    for index in 0..<count {
      try starts[index].record(on: stream)
      try body()
      try ends[index].record(on: stream)
    }
    var samples: [Double] = []
    for index in 0..<count { samples.append(Double(try ends[index].elapsedMilliseconds(since: starts[index]))) }
    return samples
  }
}

/// Device tensors of one packed problem: q, k, v, dO random; out, lse and the gradients
/// NaN-poisoned; cu_seqlens on the device (the index data a training loop passes).
final class VarlenProblem {
  let buffers: [CUDABuffer]
  let forward: VarlenForwardArguments
  let backward: VarlenBackwardArguments

  init(
    lengths: [Int], heads: Int, headDim: Int, dtype: DType, causal: Bool, deterministic: Bool, device: CUDADevice,
    stream: CUDAStream, seed: UInt64
  ) throws(FlashAttentionError) {
    let total = lengths.reduce(0, +)
    var random = BenchmarkRandom(seed: seed)
    var buffers: [CUDABuffer] = []
    var views: [TensorView] = []
    let token = [total, heads, headDim]
    for (shape, type, isInput) in [
      (token, dtype, true), (token, dtype, true), (token, dtype, true), (token, dtype, false),
      ([heads, total], DType.float32, false), (token, dtype, true), (token, dtype, false), (token, dtype, false),
      (token, dtype, false),
    ] {
      let buffer = try CUDABuffer(device: device, byteCount: max(1, shape.reduce(1, *) * type.byteSize))
      if isInput {
        try buffer.upload(try random.tensor(shape, dtype: type), stream: stream)
      } else {
        try buffer.fill(byte: 0xFF, stream: stream)
      }
      buffers.append(buffer)
      views.append(buffer.view(dtype: type, shape: shape))
    }
    // cu_seqlens as int32 on the device (staged through a 4-byte host tensor).
    let prefix = lengths.reduce(into: [Int32(0)]) { $0.append($0.last! + Int32($1)) }
    let staging = HostTensor(shape: [prefix.count], dtype: .float32)
    for (offset, value) in prefix.enumerated() { staging.storage.storeBytes(of: value, toByteOffset: offset * 4, as: Int32.self) }
    let index = try CUDABuffer(device: device, byteCount: prefix.count * 4)
    try index.upload(staging, stream: stream)
    buffers.append(index)
    let indexView = IndexTensorView(
      baseAddress: index.view(dtype: .float32, shape: [prefix.count]).baseAddress, shape: [prefix.count],
      location: .cuda(device: device.ordinal))
    let maxLength = lengths.max() ?? 0
    let sequences = VarlenSequences(
      cuSeqlensQ: indexView, cuSeqlensK: indexView, maxSeqlenQ: maxLength, maxSeqlenK: maxLength)
    let options = AttentionOptions(causal: causal, deterministic: deterministic)
    self.buffers = buffers
    forward = try VarlenForwardArguments(
      q: views[0], k: views[1], v: views[2], out: views[3], lse: views[4], sequences: sequences, options: options)
    backward = try VarlenBackwardArguments(
      q: views[0], k: views[1], v: views[2], out: views[3], lse: views[4], dOut: views[5], dQ: views[6], dK: views[7],
      dV: views[8], sequences: sequences, options: options)
  }
}
