import FlashAttentionCPU
import Foundation

/// Times our CPU FlashAttention (`CPUBackend`) and our CPU standard attention
/// (`StandardAttention`, which materializes S and P) on host tensors.
///
/// `peak_bytes` of a (case, implementation, pass) is the bytes of its tensors (inputs, outputs,
/// gradients) plus the implementation's workspace for one call: the larger of what it declares
/// (standard attention's S/P) and the growth of resident memory over the first call (freed
/// memory that the allocator hands out again does not grow it, hence the declared floor).
/// Standard attention's S/P allocation is checked against half the machine's available memory
/// before anything is allocated, and reported as `out_of_memory` instead of dying.
package struct CPUBenchmarkRunner {
  package let flash: CPUBackend
  package let standard: StandardAttention
  package let settings: BenchmarkSettings
  /// CPU model and thread count, for the records.
  package let deviceName: String

  package init(threads: Int?, settings: BenchmarkSettings) throws(FlashAttentionError) {
    flash = try CPUBackend(threads: threads)
    standard = try StandardAttention(threads: flash.threads, instructionSet: flash.instructionSet)
    self.settings = settings
    deviceName = "\(CPUBenchmarkRunner.modelName()) (\(flash.threads) threads, \(flash.instructionSet.rawValue))"
  }

  /// Runs every case through every implementation (`"flash"`, `"standard"`) and pass.
  package func run(cases: [BenchmarkCase], impls: [String], passes: [BenchmarkPass]) -> [BenchmarkRecord] {
    var records: [BenchmarkRecord] = []
    var seed: UInt64 = 1
    for benchmarkCase in cases {
      for impl in impls {
        for pass in passes {
          seed &+= 1
          let record = measure(benchmarkCase, impl: impl, pass: pass, seed: seed)
          settings.progress?(record)
          records.append(record)
        }
      }
    }
    return records
  }

  func measure(_ benchmarkCase: BenchmarkCase, impl: String, pass: BenchmarkPass, seed: UInt64) -> BenchmarkRecord {
    func record(_ status: BenchmarkStatus, _ samples: [Double] = [], peak: Int? = nil, note: String = "") -> BenchmarkRecord {
      BenchmarkRecord(
        backend: "cpu", impl: settings.label(impl), case: benchmarkCase, pass: pass, device: deviceName, status: status,
        samples: samples, peakBytes: peak, note: note)
    }
    let backend: any AttentionBackend
    switch impl {
    case "standard": backend = standard
    case let name where BenchmarkFeatures.isFlash(name): backend = flash
    default: return record(.unsupported, note: "unknown implementation \(impl)")
    }
    let shape = benchmarkCase.shape
    if impl == "standard" {
      let need = pass == .forward ? standard.requiredBytes(for: shape) : standard.requiredBackwardBytes(for: shape)
      // Half of what is available: the benchmark shares the machine, and pushing it into the
      // kernel's OOM killer would end other processes, not this case.
      if let available = CPUBenchmarkRunner.availableMemoryBytes(), need > available / 2 {
        return record(
          .outOfMemory,
          note: "S and P need \(ByteCountFormatting.string(need)), over half of the "
            + "\(ByteCountFormatting.string(available)) available")
      }
    }
    do throws(FlashAttentionError) {
      var random = BenchmarkRandom(seed: seed)
      let dtype = benchmarkCase.dtype
      let q = try random.tensor(shape.qShape, dtype: dtype)
      let k = try random.tensor(shape.kShape, dtype: dtype)
      let v = try random.tensor(shape.vShape, dtype: dtype)
      // fp8 inputs write a bfloat16 output (descales 1); their backward is refused below.
      let out = try HostTensor(shape: shape.oShape, dtype: dtype.isFloat8 ? .bfloat16 : dtype, name: "out")
      let lse = try HostTensor(shape: shape.lseShape, dtype: .float32, name: "lse")
      let options = BenchmarkFeatures.options(impl: impl, case: benchmarkCase, settings: settings)
      let forward = try ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options)
      var step: () throws(FlashAttentionError) -> Void = { () throws(FlashAttentionError) in try backend.forward(forward) }
      var gradients: [HostTensor] = []
      if pass != .forward {
        let dOut = try random.tensor(shape.oShape, dtype: dtype)
        gradients = [
          dOut, try HostTensor(shape: shape.qShape, dtype: dtype, name: "dq"),
          try HostTensor(shape: shape.kShape, dtype: dtype, name: "dk"),
          try HostTensor(shape: shape.vShape, dtype: dtype, name: "dv"),
        ]
        let backward = try BackwardArguments(
          q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, dOut: dOut.view, dQ: gradients[1].view,
          dK: gradients[2].view, dV: gradients[3].view, options: options)
        if pass == .backward {
          try backend.forward(forward)  // out and lse for the backward pass, untimed
          step = { () throws(FlashAttentionError) in try backend.backward(backward) }
        } else {
          step = { () throws(FlashAttentionError) in
            try backend.forward(forward)
            try backend.backward(backward)
          }
        }
      }
      // The first call is the warm-up and the peak-memory probe; it also prices one run.
      let tensorBytes = ([q, k, v, out, lse] + gradients).reduce(0) { $0 + $1.byteCount }
      let declared = impl != "standard" ? 0 : pass == .forward
        ? standard.requiredBytes(for: shape) : standard.requiredBackwardBytes(for: shape)
      let memory = HostPeakMemory()
      let started = monotonicSeconds()
      try step()
      let once = monotonicSeconds() - started
      let peak = tensorBytes + max(declared, memory.peakBytes() ?? 0)
      if settings.once { return record(.ok, [once * 1e3], peak: peak, note: "one run, no warm-up") }
      for _ in 1..<max(1, settings.warmup) { try step() }
      let limit = max(1, settings.repetitions)
      let runs = min(limit, max(min(3, limit), Int(settings.cpuBudgetSeconds / max(once, 1e-9))))
      var samples: [Double] = []
      for _ in 0..<runs {
        let start = monotonicSeconds()
        try step()
        samples.append((monotonicSeconds() - start) * 1e3)
      }
      withExtendedLifetime((q, k, v, out, lse, gradients)) {}
      return record(.ok, samples, peak: peak)
    } catch {
      return record(BenchmarkStatus(error), note: error.description)
    }
  }

  /// `MemAvailable` from /proc/meminfo, in bytes.
  static func availableMemoryBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
      return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
    return nil
  }

  /// The CPU's model name from /proc/cpuinfo.
  static func modelName() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "cpu" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
      if let value = line.split(separator: ":", maxSplits: 1).last {
        return value.trimmingCharacters(in: .whitespaces)
      }
    }
    return "cpu"
  }
}
