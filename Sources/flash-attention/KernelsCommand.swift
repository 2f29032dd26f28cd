import ArgumentParser
import FlashAttention
import FlashAttentionTools
import FlashAttentionCUDA

/// `flash-attention kernels`: compiles every kernel variant with NVRTC for one architecture and
/// prints what ptxas reports. Needs NVRTC, not a GPU.
struct KernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kernels",
    abstract: "Compile every CUDA kernel variant for an architecture and print registers, shared memory, spills and compile time.")

  @Option(help: "Target architecture: sm_80, sm_86, sm_89, sm_90a ...")
  var arch: String = "sm_90a"

  @Flag(help: "Cross every dtype and mask/softcap flag instead of the representative set.")
  var exhaustive = false

  @Flag(help: "Instead of compiling, time forward and backward on the GPU over the FlashAttention grid (bf16; N 1k-16k, batch 16384/N, heads 2048/d).")
  var time = false

  @Option(help: "With --time: comma-separated head dims.")
  var headDims: String = "64,128,256"

  @Option(help: "With --time: comma-separated sequence lengths.")
  var seqlens: String = "1024,2048,4096,8192,16384"

  @Flag(help: "With --time: forward only.")
  var forwardOnly = false

  @Option(help: "With --time: forward tiles to compare, BMxBNxWARPS comma-separated (e.g. 128x64x8,128x64x4).")
  var forwardTiles: String?

  @Option(help: "With --time: backward tiles to compare, BMxBNxWARPS comma-separated (e.g. 64x128x8,64x64x8).")
  var backwardTiles: String?

  @OptionGroup(title: "CUDA tuning (with --time: applied to every row)")
  var cudaTuning: CUDATuningOptions

  func validate() throws {
    let digits = arch.dropFirst(3).filter(\.isNumber)
    guard arch.hasPrefix("sm_"), let number = Int(digits), number >= 80 else {
      throw ValidationError("--arch must be sm_80 or newer (sm_80, sm_86, sm_89, sm_90a), got \(arch)")
    }
  }

  @Option(help: "Only the variants whose label contains this text.")
  var filter: String?

  @Option(help: "Write each variant's CUBIN and ptxas log into this folder (for SASS comparisons: scripts/sass-digest.py).")
  var dump: String?

  @Flag(help: "Also disassemble each cubin with cuobjdump (PATH, FLASH_ATTENTION_CUOBJDUMP, or the nvidia-cuda-cuobjdump wheel) and count HGMMA, UTMALDG and local-memory (LDL/STL) instructions.")
  var sass = false

  func run() throws {
    if time { return try timeKernels() }
    var variants = CUDAKernelCatalog.keys(arch: arch, exhaustive: exhaustive).filter { key in
      filter.map { label(key).contains($0) } ?? true
    }
    // --hopper-forward-tile and --fp8-exp2-fma-period: the Hopper forward variants as a tuning
    // run with them would launch (the compile report before such a run).
    let tuning = try cudaTuning.tuning()
    variants = variants.map { variant -> any CUDAKernelKey in
      guard var key = variant as? HopperForwardKey else { return variant }
      if let tile = tuning.hopperForwardTile { key.apply(tile) }
      key.apply(exp2OnFMAPeriod: tuning.float8Exp2OnFMAPeriod)
      return key
    }
    let disassembler = sass ? try SASSInspector.locate() : nil
    print(
      "kernel".padding(66) + "regs".padding(6) + "smem".padding(9) + "stack".padding(7) + "spills".padding(8)
        + "compile".padding(9) + (disassembler == nil ? "" : "HGMMA".padding(7) + "UTMALDG".padding(9) + "LDL/STL"))
    var failures = 0
    for variant in variants {
      let label = self.label(variant).padding(66)
      do {
        let kernel = try KernelCompiler.compile(variant.program, arch: arch)
        guard let resources = kernel.resources else {
          print(label + "no ptxas resource report")
          failures += 1
          continue
        }
        let smem = resources.staticSharedMemory + variant.sharedMemoryBytes
        let spills = resources.spillStores + resources.spillLoads
        let seconds = (kernel.compileSeconds * 100).rounded() / 100
        var line =
          label + "\(resources.registers)".padding(6) + "\(smem)".padding(9) + "\(resources.stackFrame)".padding(7)
          + "\(spills)".padding(8) + "\(seconds) s".padding(9)
        if resources.spills { failures += 1 }
        if let disassembler {
          let counts = try disassembler.opcodeCounts(cubin: kernel.cubin)
          line += "\(counts.hgmma)".padding(7) + "\(counts.utmaldg)".padding(9) + "\(counts.localMemory)"
          if counts.localMemory > 0 || (variant.family == .hopper && (counts.hgmma == 0 || counts.utmaldg == 0)) {
            line += "  UNEXPECTED SASS"
            failures += 1
          }
        }
        if let dump { try KernelDump.write(kernel, program: variant.program, label: self.label(variant), into: dump) }
        print(line + (resources.spills ? "  SPILLS" : ""))
      } catch {
        print(label + "FAILED")
        print(error)
        failures += 1
      }
    }
    print("\(variants.count) kernels for \(arch), \(failures) problem(s)")
    if failures > 0 { throw ExitCode(1) }
  }
}

extension KernelsCommand {
  /// A variant's row label: the key, and the architecture where the key does not name it.
  func label(_ key: any CUDAKernelKey) -> String {
    key.family == .standardAttention ? "\(key) \(arch)" : "\(key)"
  }

  /// The timing table: our TFLOP/s per shape, for comparison with the PyTorch peers run in the
  /// same device call (benchmarks/peers/torch_sdpa.py on the same grid).
  func timeKernels() throws {
    let base = try cudaTuning.tuning()
    var backend = try CUDABackend(device: 0, tuning: base)
    print("\(backend.device.name), \(backend.device.arch)")
    print("d".padding(5) + "N".padding(7) + "b".padding(4) + "h".padding(4) + "causal".padding(8) + "tile".padding(12)
      + "fwd ms".padding(10) + "fwd TF/s".padding(10) + "bwd ms".padding(10) + "bwd TF/s")
    for d in headDims.split(separator: ",").compactMap({ Int($0) }) {
      // (label, tuning, time the backward?) per row.
      var runs: [(String, CUDAKernelTuning, Bool)] = []
      for text in (forwardTiles ?? "").split(separator: ",") {
        guard let tile = AttentionTile.forward(parsing: String(text)) else {
          throw ValidationError("bad forward tile \(text) (BMxBNxWARPS, BM a multiple of 16·WARPS)")
        }
        var tuning = base
        tuning.forwardTile = tile
        runs.append(("f" + text, tuning, false))
      }
      for text in (backwardTiles ?? "").split(separator: ",") {
        guard let tile = AttentionTile.backward(parsing: String(text)) else {
          throw ValidationError("bad backward tile \(text) (BMxBNxWARPS)")
        }
        var tuning = base
        tuning.backwardTile = tile
        runs.append(("b" + text, tuning, true))
      }
      if runs.isEmpty { runs = [(cudaTuning.isSet ? "tuned" : "table", base, !forwardOnly)] }
      for n in seqlens.split(separator: ",").compactMap({ Int($0) }) {
        for causal in [false, true] {
          let shape = AttentionShape(batch: max(16384 / n, 1), seqlenQ: n, headsQ: 2048 / d, headDim: d)
          for (label, tuning, withBackward) in runs {
            backend.tuning = tuning
            let timer = CUDAAttentionTimer(backend: backend)
            do {
              let m = try timer.measure(shape: shape, causal: causal, dtype: .bfloat16, backward: withBackward)
              func f(_ x: Double?) -> String { x.map { String(Int(($0 * 1000).rounded())).withDecimals(3) } ?? "-" }
              func t(_ x: Double?) -> String { x.map { String(Int($0.rounded())) } ?? "-" }
              print("\(d)".padding(5) + "\(n)".padding(7) + "\(shape.batch)".padding(4) + "\(shape.headsQ)".padding(4)
                + "\(causal)".padding(8) + label.padding(12) + f(m.forwardMilliseconds).padding(10) + t(m.forwardTFLOPs).padding(10)
                + f(m.backwardMilliseconds).padding(10) + t(m.backwardTFLOPs))
            } catch {
              print("d=\(d) N=\(n) causal=\(causal) \(label): \(error)")
            }
          }
        }
      }
    }
  }
}

extension String {
  /// "12345" thousandths → "12.345".
  fileprivate func withDecimals(_ places: Int) -> String {
    let padded = String(repeating: "0", count: max(places + 1 - count, 0)) + self
    return String(padded.dropLast(places)) + "." + String(padded.suffix(places))
  }


  fileprivate func padding(_ width: Int) -> String {
    count >= width ? self + " " : self + String(repeating: " ", count: width - count)
  }
}
