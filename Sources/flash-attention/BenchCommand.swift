import ArgumentParser
import FlashAttention
import FlashAttentionTools
import FlashAttentionCPU
import FlashAttentionCUDA
import Foundation

/// `flash-attention bench`: timing sweeps of our FlashAttention and our standard attention.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Time FlashAttention against standard attention on a grid of shapes.",
    discussion: """
      Grids (--grid): flash = the FlashAttention papers' grid (N 512..16k, batch 16384/N, heads \
      2048/d, d 64/128/256); cpu = the CPU default (N 512..4096, batch 4096/N, 8 heads, d 64/128, \
      a few minutes on 2 cores); cpu-kernels = N 1024..16384, batch 1, 8 heads, d 64/128; \
      scaling-gpu = batch 1, 16 heads, d 128, N 1k..128k; scaling-cpu = batch 1, one head, d 64, N 1k..64k; \
      long-gpu = one head, N 1,048,576, d 128; long-cpu = one head, N 131,072, d 64, causal; \
      varlen (GPU) = one packed batch of lengths drawn from 128..8192 totalling 16384 tokens \
      (--varlen-seed), heads 2048/d, d 64/128, bf16, through the varlen entry points, beside the \
      fixed-length batch of the same tokens and work per token; TFLOP/s on the unpadded work; \
      smoke; custom (--batch --heads --seqlens --head-dims). GPU: CUDA events, median of --reps \
      runs after --warmup, inputs rotated past twice the L2 cache. CPU: median of 3..--reps runs \
      within --cpu-budget seconds per case, and the probed FMA peak for percent-of-peak. A table \
      goes to stdout, progress to stderr, and --json FILE writes the schema of benchmarks/README.md.
      """)

  @Option(help: "cpu or cuda (default: cuda when usable, else cpu).")
  var device: String?

  @Option(help: "flash | cpu | cpu-kernels | scaling-gpu | scaling-cpu | long-gpu | long-cpu | varlen | smoke | custom (default: flash on cuda, cpu on cpu).")
  var grid: String?

  @Option(help: "Seed of the varlen grid's length mix (the peer script takes the same).")
  var varlenSeed: UInt64 = VarlenLengthMix.defaultSeed

  @Option(help: "Comma list of dtypes: bf16, fp16, fp32, fp8 (e4m3 inputs, bf16 output, forward only) (default: bf16,fp16 on cuda, fp32 on cpu).")
  var dtypes: String?

  @Option(help: "Comma list of head dims, overriding the grid's.")
  var headDims: String?

  @Option(help: "Comma list of sequence lengths, overriding the grid's.")
  var seqlens: String?

  @Option(help: "both, yes or no.")
  var causal = "both"

  @Option(help: "Batch of the custom grid.")
  var batch = 1

  @Option(help: "Heads of the custom grid.")
  var heads = 8

  @Option(help: "Comma list: flash, standard, flash-alibi, flash-alibi-sm80 (ALiBi on the FlashAttention-2 kernels, to time both ALiBi routes in one run), flash-dropout, flash-dropout-sm80 (the dropout forward on the FlashAttention-2 kernels, likewise), flash-window (a sliding window of 1024 keys each side; TFLOP/s counted as for the full mask, so compare its times).")
  var impls = "flash,standard"

  @Option(help: "Comma list: forward, backward, forward_backward.")
  var passes = "forward,backward,forward_backward"

  @Option(help: "Timed runs (GPU: exactly; CPU: at most).")
  var reps = 20

  @Option(help: "Untimed runs first.")
  var warmup = 3

  @Option(help: "CPU: timed seconds per case.")
  var cpuBudget = 1.0

  @Option(help: "CPU threads (default: FLASH_ATTENTION_CPU_THREADS or every core).")
  var threads: Int?

  @Flag(help: "One run per case and pass, no warm-up or timing loop (for profilers).")
  var once = false

  @Flag(help: "Deterministic mode (bit-identical backward; on the GPU one launch per key block, slow by design). Records are named flash-deterministic.")
  var deterministic = false

  @Flag(help: "Also measure flash with ALiBi (FlashAttention's slopes) beside plain flash: records named flash-alibi.")
  var alibi = false

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp("Also measure flash with dropout of this probability beside plain flash: records named flash-dropout.", valueName: "P"))
  var dropout: Float?

  @Option(help: "Write the records as JSON to this file.")
  var json: String?

  @Flag(help: "No progress on stderr.")
  var quiet = false

  @OptionGroup(title: "CUDA tuning")
  var cudaTuning: CUDATuningOptions

  @Option(help: "--grid decode (GPU): KV-cache decoding, bf16, d 128, GQA 32/8, one query token, cache lengths --seqlens (default 1k..128k), bandwidth of K and V read against cuMemcpyDtoD in the same run. Comma list of batches (default 1,4,16,64).")
  var decodeBatches: String?

  @Option(help: "decode grid: comma list of page sizes, 0 for a contiguous cache (default 0,1,16,64,256).")
  var pageSizes: String?

  @Option(help: "decode grid: comma list of split counts to compare, 0 for automatic (default 0).")
  var decodeSplits: String?

  @Flag(help: "decode grid: no L2 flush (memset) before each timed run; on caches far above the L2 this measures what the flush's dirty lines cost.")
  var decodeKeepL2 = false

  @Option(help: "decode grid: what runs before each timed run, a comma list measured side by side per shape (columns in the table, one record each in --json): dirty (a memset of twice the L2, the default; the decode's reads write its dirty lines back inside the timed window), clean (the memset, then a read-only sweep of another buffer of twice the L2: cold and clean), none (no flush, as --decode-keep-l2).")
  var decodeFlush: String?

  @Flag(help: "decode grid: also time, per shape and flush, one read-only launch over as many bytes as the shape's K and V (the same flush before it, the same timing): the fastest a one-launch decode of that shape can be here. Columns 'floor us' and '% floor' (decode bandwidth / floor bandwidth).")
  var decodeReadFloor = false

  func run() throws {
    if grid == "decode" { return try runDecodeGrid() }
    let onGPU: Bool
    switch device?.lowercased() {
    case "cpu": onGPU = false
    case "cuda", "gpu": onGPU = true
    case nil: onGPU = CUDAEnvironmentReport.probe().isUsable
    case let other?: throw CommandLineFailure("--device must be cpu or cuda, not \(other)")
    }
    let gridName = grid ?? (onGPU ? "flash" : "cpu")
    let defaultDTypes = gridName == "varlen" ? "bf16" : onGPU ? "bf16,fp16" : "fp32"
    let dtypeList = try (dtypes ?? defaultDTypes).split(separator: ",").map { text in
      guard let dtype = DType(argument: String(text)) else { throw CommandLineFailure("unknown dtype \(text)") }
      return dtype
    }
    if gridName == "varlen" {
      try runVarlen(onGPU: onGPU, dtypes: dtypeList)
      return
    }
    guard let preset = BenchmarkGrid(rawValue: gridName) else {
      throw CommandLineFailure("unknown grid \(gridName); use \(BenchmarkGrid.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    let causalList: [Bool]
    switch causal {
    case "both": causalList = [false, true]
    case "yes": causalList = [true]
    case "no": causalList = [false]
    default: throw CommandLineFailure("--causal must be both, yes or no")
    }
    let passList = try passes.split(separator: ",").map { text in
      guard let pass = BenchmarkPass(rawValue: String(text)) else { throw CommandLineFailure("unknown pass \(text)") }
      return pass
    }
    var implList = impls.split(separator: ",").map(String.init)
    for impl in implList where !BenchmarkFeatures.isFlash(impl) && impl != "standard" {
      throw CommandLineFailure(
        "unknown implementation \(impl); use flash, standard, \(BenchmarkFeatures.alibi), \(BenchmarkFeatures.alibiSM80), \(BenchmarkFeatures.dropout), \(BenchmarkFeatures.dropoutSM80), \(BenchmarkFeatures.window)")
    }
    // Each feature right after plain flash, so one call measures both in the same window.
    if alibi && !implList.contains(BenchmarkFeatures.alibi) { implList.append(BenchmarkFeatures.alibi) }
    if let dropout {
      guard dropout > 0, dropout < 1 else { throw CommandLineFailure("--dropout \(dropout): must be in (0, 1)") }
      if !implList.contains(BenchmarkFeatures.dropout) { implList.append(BenchmarkFeatures.dropout) }
    }
    let cases = preset.cases(
      dtypes: dtypeList, headDims: try integers(headDims, "--head-dims"), seqlens: try integers(seqlens, "--seqlens"),
      causal: causalList, batch: batch, heads: heads)

    var settings = BenchmarkSettings()
    settings.repetitions = reps
    settings.warmup = warmup
    settings.cpuBudgetSeconds = cpuBudget
    settings.once = once
    settings.deterministic = deterministic
    if let dropout { settings.dropoutProbability = dropout }
    let total = cases.count * implList.count * passList.count
    if !quiet {
      let counter = BenchProgress(total: total)
      settings.progress = { record in counter.report(record) }
    }

    let records: [BenchmarkRecord]
    var software: [String: String] = [:]
    if deterministic { software["deterministic"] = "true" }
    var peak: Double?
    let deviceName: String
    if onGPU {
      let runner = try CUDABenchmarkRunner(device: 0, tuning: cudaTuning.tuning(), settings: settings)
      deviceName = runner.deviceName
      let environment = CUDAEnvironmentReport.probe()
      software["cuda_driver"] = environment.driverVersion.map(String.init)
      software["nvrtc"] = environment.nvrtcVersion.map { "\($0.major).\($0.minor)" }
      var checkedImpls = implList
      if implList.contains("standard") && !once {
        for dtype in Set(dtypeList).sorted(by: { $0.rawValue < $1.rawValue }) where !dtype.isFloat8 {
          let check = runner.checkStandard(dtype: dtype)
          software["standard_check_\(dtype)"] = (check.passed ? "pass: " : "FAIL: ") + check.summary
          writeStandardError("standard attention \(dtype) vs float64 reference: \(check.passed ? "pass" : "FAIL") (\(check.summary))\n")
          if !check.passed { checkedImpls.removeAll { $0 == "standard" } }
        }
      }
      var measured = runner.run(cases: cases, impls: checkedImpls, passes: passList)
      if checkedImpls.count < implList.count {
        measured += cases.flatMap { benchmarkCase in
          passList.map {
            BenchmarkRecord(
              backend: "cuda", impl: "standard", case: benchmarkCase, pass: $0, device: deviceName, status: .error,
              note: "standard attention failed its reference check")
          }
        }
      }
      records = measured
    } else {
      let runner = try CPUBenchmarkRunner(threads: threads, settings: settings)
      deviceName = runner.deviceName
      if !once {
        peak = FMAPeakProbe.measure(threads: runner.flash.threads, instructionSet: runner.flash.instructionSet)
        writeStandardError("FMA peak of \(runner.flash.threads) threads: \(String(format: "%.1f", peak ?? 0)) GFLOP/s\n")
      }
      software["threads"] = String(runner.flash.threads)
      software["cpu_isa"] = runner.flash.instructionSet.description
      // Other processes on a small machine move CPU numbers; the load says how much.
      software["loadavg_start"] = loadAverage()
      software["cpu_features"] = CPUFeatures.current.available.joined(separator: " ")
      records = runner.run(cases: cases, impls: implList, passes: passList)
    }
    if !onGPU { software["loadavg_end"] = loadAverage() }
    software["swift_bench_settings"] = "reps \(reps), warmup \(warmup)" + (onGPU ? "" : ", cpu budget \(cpuBudget) s")
    if let json {
      let report = BenchmarkReport(
        backend: onGPU ? "cuda" : "cpu", device: deviceName, software: software, fmaPeakGFLOPs: peak, records: records)
      try report.write(to: json)
    }
    print("device: \(deviceName)" + (peak.map { String(format: ", FMA peak %.1f GFLOP/s", $0) } ?? ""))
    let output = BenchTable(cpuPeakGFLOPs: onGPU ? nil : peak)
    print(output.header)
    for record in records { print(output.row(record)) }
  }

  /// `--grid varlen`: the packed batch and its fixed-length equivalent (GPU only).
  private func runVarlen(onGPU: Bool, dtypes: [DType]) throws {
    guard onGPU else { throw CommandLineFailure("--grid varlen runs on the GPU (--device cuda)") }
    let causalList: [Bool] = causal == "yes" ? [true] : causal == "no" ? [false] : [false, true]
    let passList = try passes.split(separator: ",").map { text in
      guard let pass = BenchmarkPass(rawValue: String(text)) else { throw CommandLineFailure("unknown pass \(text)") }
      return pass
    }
    var settings = BenchmarkSettings()
    settings.repetitions = reps
    settings.warmup = warmup
    settings.once = once
    settings.deterministic = deterministic
    let lengths = VarlenLengthMix.lengths(seed: varlenSeed)
    let headDimList = try integers(headDims, "--head-dims") ?? [64, 128]
    if !quiet {
      let runs = try cudaTuning.varlenSchedules().count + 1  // each schedule, then the fixed-length batch
      let counter = BenchProgress(total: dtypes.count * headDimList.count * causalList.count * passList.count * runs)
      settings.progress = { record in counter.report(record) }
    }
    let runner = try CUDABenchmarkRunner(device: 0, tuning: cudaTuning.tuning(), settings: settings)
    writeStandardError("varlen lengths (seed \(varlenSeed)): \(lengths)\n")
    let schedules = try cudaTuning.varlenSchedules()
    let records = runner.runVarlen(
      lengths: lengths, headDims: headDimList, causal: causalList, dtypes: dtypes, passes: passList,
      schedules: schedules)
    let environment = CUDAEnvironmentReport.probe()
    var software: [String: String] = ["varlen_seed": String(varlenSeed), "varlen_lengths": "\(lengths)"]
    software["cuda_driver"] = environment.driverVersion.map(String.init)
    software["nvrtc"] = environment.nvrtcVersion.map { "\($0.major).\($0.minor)" }
    software["swift_bench_settings"] = "reps \(reps), warmup \(warmup)"
    if let json {
      let report = BenchmarkReport(
        backend: "cuda", device: runner.deviceName, software: software, fmaPeakGFLOPs: nil, records: records)
      try report.write(to: json)
    }
    print("device: \(runner.deviceName)")
    let output = BenchTable(cpuPeakGFLOPs: nil)
    print(output.header)
    for record in records { print(output.row(record)) }
  }

  /// The first three fields of /proc/loadavg ("1.02 0.98 0.75"), or "" elsewhere.
  private func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
  }

  func integers(_ text: String?, _ flag: String) throws -> [Int]? {
    guard let text else { return nil }
    return try text.split(separator: ",").map { part in
      guard let value = Int(part), value > 0 else { throw CommandLineFailure("\(flag): \(part) is not a positive integer") }
      return value
    }
  }
}
