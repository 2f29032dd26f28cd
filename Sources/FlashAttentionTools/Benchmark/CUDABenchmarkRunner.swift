import FlashAttentionCUDA

/// Times our CUDA FlashAttention (`CUDABackend`) and our CUDA standard attention
/// (`CUDAStandardAttention`, S and P materialized in fp32) on device-resident inputs.
///
/// Timing: CUDA events around every run, all runs queued back to back so launch gaps stay out
/// of the numbers, after `warmup` untimed runs; the median of `repetitions`. Inputs rotate over
/// enough sets that the working set exceeds twice the L2 cache. `peak_bytes` is the device
/// memory one call needs: its tensors, the standard attention workspace, and whatever the
/// implementation itself allocated (the fall of `cuMemGetInfo`'s free bytes over the call).
package struct CUDABenchmarkRunner {
  package let flash: CUDABackend
  /// The same tuning with ALiBi on the FlashAttention-2 kernels (`flash-alibi-sm80`).
  package let flashAlibiSM80: CUDABackend
  /// The same tuning with the dropout forward on the FlashAttention-2 kernels (`flash-dropout-sm80`).
  package let flashDropoutSM80: CUDABackend
  package let standard: CUDAStandardAttention
  package let settings: BenchmarkSettings
  package var deviceName: String { flash.device.name }

  package init(
    device: Int, tuning: CUDAKernelTuning = CUDAKernelTuning(), settings: BenchmarkSettings
  ) throws(FlashAttentionError) {
    flash = try CUDABackend(device: device, tuning: tuning)
    var sm80 = flash  // the same device and stream
    sm80.tuning.alibiKernels = .sm80
    flashAlibiSM80 = sm80
    var dropoutSM80 = flash
    dropoutSM80.tuning.dropoutKernels = .sm80
    flashDropoutSM80 = dropoutSM80
    standard = CUDAStandardAttention(device: flash.device)
    self.settings = settings
  }

  /// Device tensors of one problem: inputs, outputs and gradients. fp8 inputs get a bfloat16
  /// output, descale factors of 1 (the kernel reads them as it would real ones) and no backward.
  final class TensorSet {
    let buffers: [CUDABuffer]
    let forward: ForwardArguments
    let backward: BackwardArguments?

    init(
      _ benchmarkCase: BenchmarkCase, device: CUDADevice, stream: CUDAStream, seed: UInt64, deterministic: Bool
    ) throws(FlashAttentionError) {
      let shape = benchmarkCase.shape
      let dtype = benchmarkCase.dtype
      var random = BenchmarkRandom(seed: seed)
      var buffers: [CUDABuffer] = []
      var views: [TensorView] = []
      let outType = dtype.isFloat8 ? DType.bfloat16 : dtype
      let layout: [([Int], DType, Bool)] = [
        (shape.qShape, dtype, true), (shape.kShape, dtype, true), (shape.vShape, dtype, true),
        (shape.oShape, outType, false), (shape.lseShape, .float32, false), (shape.oShape, outType, true),
        (shape.qShape, dtype, false), (shape.kShape, dtype, false), (shape.vShape, dtype, false),
      ]
      for (tensorShape, tensorType, isInput) in layout {
        let buffer = try CUDABuffer(device: device, byteCount: tensorShape.reduce(1, *) * tensorType.byteSize)
        if isInput {
          try buffer.upload(try random.tensor(tensorShape, dtype: tensorType), stream: stream)
        } else {
          try buffer.fill(byte: 0xFF, stream: stream)  // NaN until written
        }
        buffers.append(buffer)
        views.append(buffer.view(dtype: tensorType, shape: tensorShape))
      }
      var descale = FP8Descale.none
      if dtype.isFloat8 {
        let factorShape = [shape.batch, shape.headsKV]
        let ones = HostTensor([Float](repeating: 1, count: factorShape.reduce(1, *)), shape: factorShape)
        var factors: [TensorView] = []
        for _ in 0..<3 {
          let buffer = try CUDABuffer(device: device, byteCount: ones.byteCount)
          try buffer.upload(ones, stream: stream)
          buffers.append(buffer)
          factors.append(buffer.view(dtype: .float32, shape: factorShape))
        }
        descale = FP8Descale(q: factors[0], k: factors[1], v: factors[2])
      }
      try stream.synchronize()
      self.buffers = buffers
      let options = AttentionOptions(causal: benchmarkCase.causal, deterministic: deterministic)
      forward = try ForwardArguments(
        q: views[0], k: views[1], v: views[2], out: views[3], lse: views[4], options: options, descale: descale)
      backward =
        dtype.isFloat8
        ? nil
        : try BackwardArguments(
          q: views[0], k: views[1], v: views[2], out: views[3], lse: views[4], dOut: views[5], dQ: views[6],
          dK: views[7], dV: views[8], options: options)
    }

    /// The backward's arguments; fp8 has no backward pass.
    func requireBackward() throws(FlashAttentionError) -> BackwardArguments {
      guard let backward else { throw .unsupported(backend: "cuda", feature: "the backward pass on fp8 inputs") }
      return backward
    }

    /// Bytes of the tensors a pass touches (forward: q, k, v, out, lse; otherwise all).
    func bytes(for pass: BenchmarkPass) -> Int {
      (pass == .forward ? buffers.prefix(5) : buffers[...]).reduce(0) { $0 + $1.byteCount }
    }
  }

  /// Runs every case through every implementation (`"flash"`, `"standard"`) and pass.
  package func run(cases: [BenchmarkCase], impls: [String], passes: [BenchmarkPass]) -> [BenchmarkRecord] {
    var records: [BenchmarkRecord] = []
    var seed: UInt64 = 1
    for benchmarkCase in cases {
      seed &+= 97
      let caseRecords = measure(benchmarkCase, impls: impls, passes: passes, seed: seed)
      for record in caseRecords { settings.progress?(record) }
      records += caseRecords
    }
    return records
  }

  func measure(_ benchmarkCase: BenchmarkCase, impls: [String], passes: [BenchmarkPass], seed: UInt64) -> [BenchmarkRecord] {
    func record(_ impl: String, _ pass: BenchmarkPass, _ status: BenchmarkStatus, _ samples: [Double] = [],
                peak: Int? = nil, note: String = "") -> BenchmarkRecord {
      BenchmarkRecord(
        backend: "cuda", impl: settings.label(impl), case: benchmarkCase, pass: pass, device: deviceName, status: status,
        samples: samples, peakBytes: peak, note: note)
    }
    let device = flash.device
    let stream = flash.stream
    var sets: [TensorSet] = []
    do throws(FlashAttentionError) {
      let first = try TensorSet(benchmarkCase, device: device, stream: stream, seed: seed, deterministic: settings.deterministic)
      sets = [first]
      let inputBytes = first.buffers.prefix(3).reduce(0) { $0 + $1.byteCount } + first.buffers[5].byteCount
      let wanted = settings.once ? 1 : min(8, max(1, (2 * device.l2CacheBytes + inputBytes - 1) / max(inputBytes, 1)))
      for index in 1..<wanted {
        sets.append(try TensorSet(
          benchmarkCase, device: device, stream: stream, seed: seed &+ UInt64(index), deterministic: settings.deterministic))
      }
    } catch {
      return impls.flatMap { impl in passes.map { record(impl, $0, BenchmarkStatus(error), note: error.description) } }
    }
    var records: [BenchmarkRecord] = []
    for impl in impls {
      if !BenchmarkFeatures.isFlash(impl) && impl != "standard" {
        records += passes.map { record(impl, $0, .unsupported, note: "unknown implementation \(impl)") }
        continue
      }
      if benchmarkCase.dtype.isFloat8 && impl == "standard" {
        records += passes.map { record(impl, $0, .unsupported, note: "standard attention has no fp8 path") }
        continue
      }
      // Standard attention's S/P workspace, sized per pass (the backward needs twice the
      // forward's), so a forward that fits is measured even where the backward does not.
      var workspace: CUDABuffer?
      for pass in passes {
        if impl == "standard" {
          let bytes = pass == .forward
            ? CUDAStandardAttention.forwardWorkspaceBytes(for: benchmarkCase.shape)
            : CUDAStandardAttention.backwardWorkspaceBytes(for: benchmarkCase.shape)
          if (workspace?.byteCount ?? -1) < bytes {
            workspace = nil  // free the smaller one first
            do throws(FlashAttentionError) {
              workspace = try CUDABuffer(device: device, byteCount: bytes)
            } catch {
              records.append(
                record(impl, pass, BenchmarkStatus(error), note: "S/P workspace of \(ByteCountFormatting.string(bytes)): \(error)"))
              continue
            }
          }
        }
        do throws(FlashAttentionError) {
          let step = try makeStep(
            impl: impl, pass: pass, workspace: workspace,
            options: BenchmarkFeatures.options(impl: impl, case: benchmarkCase, settings: settings))
          if pass == .backward {
            for set in sets { try step.forward(set) }  // out and lse for the backward pass
          }
          try stream.synchronize()
          let freeBefore = try device.memoryInfo().free
          try step.run(sets[0])
          try stream.synchronize()
          let allocated = max(0, freeBefore - (try device.memoryInfo().free))
          let peak = sets[0].bytes(for: pass) + (workspace?.byteCount ?? 0) + allocated
          if settings.once {
            records.append(record(impl, pass, .ok, peak: peak, note: "one untimed run"))
            continue
          }
          let samples = try time(step.run, sets: sets, stream: stream)
          records.append(record(impl, pass, .ok, samples, peak: peak, note: "\(sets.count) input sets"))
        } catch {
          records.append(record(impl, pass, BenchmarkStatus(error), note: error.description))
        }
      }
      withExtendedLifetime(workspace) {}
    }
    withExtendedLifetime(sets) {}
    return records
  }

  struct Step {
    var forward: (TensorSet) throws(FlashAttentionError) -> Void
    var run: (TensorSet) throws(FlashAttentionError) -> Void
  }

  func makeStep(
    impl: String, pass: BenchmarkPass, workspace: CUDABuffer?, options: AttentionOptions? = nil
  ) throws(FlashAttentionError) -> Step {
    let stream = flash.stream
    let forward: (TensorSet) throws(FlashAttentionError) -> Void
    let backward: (TensorSet) throws(FlashAttentionError) -> Void
    if impl == "standard", let workspace {
      forward = { (set) throws(FlashAttentionError) in
        try standard.enqueueForward(set.forward, workspace: workspace, on: stream)
      }
      backward = { (set) throws(FlashAttentionError) in
        try standard.enqueueBackward(set.requireBackward(), workspace: workspace, on: stream)
      }
    } else if let options, impl != "flash" {
      // A feature variant: the set's tensors under its options. The arguments are rebuilt per
      // call (a few microseconds of host checks, hidden behind the queued kernels).
      let backend =
        impl == BenchmarkFeatures.alibiSM80
        ? flashAlibiSM80 : impl == BenchmarkFeatures.dropoutSM80 ? flashDropoutSM80 : flash
      forward = { (set) throws(FlashAttentionError) in try backend.enqueueForward(set.forward.with(options), on: stream) }
      backward = { (set) throws(FlashAttentionError) in
        try backend.enqueueBackward(set.requireBackward().with(options), on: stream)
      }
    } else {
      forward = { (set) throws(FlashAttentionError) in try flash.enqueueForward(set.forward, on: stream) }
      backward = { (set) throws(FlashAttentionError) in try flash.enqueueBackward(set.requireBackward(), on: stream) }
    }
    switch pass {
    case .forward: return Step(forward: forward, run: forward)
    case .backward: return Step(forward: forward, run: backward)
    case .forwardBackward:
      return Step(forward: forward) { (set) throws(FlashAttentionError) in
        try forward(set)
        try backward(set)
      }
    }
  }

  /// Warm-up, then every run between its own pair of events, all queued before the first wait.
  func time(
    _ body: (TensorSet) throws(FlashAttentionError) -> Void, sets: [TensorSet], stream: CUDAStream
  ) throws(FlashAttentionError) -> [Double] {
    for index in 0..<settings.warmup { try body(sets[index % sets.count]) }
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
      try body(sets[index % sets.count])
      try ends[index].record(on: stream)
    }
    var samples: [Double] = []
    for index in 0..<count {
      samples.append(Double(try ends[index].elapsedMilliseconds(since: starts[index])))
    }
    return samples
  }
}
