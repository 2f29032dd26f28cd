import ArgumentParser
import FlashAttention
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

  func validate() throws {
    let digits = arch.dropFirst(3).filter(\.isNumber)
    guard arch.hasPrefix("sm_"), let number = Int(digits), number >= 80 else {
      throw ValidationError("--arch must be sm_80 or newer (sm_80, sm_86, sm_89, sm_90a), got \(arch)")
    }
  }

  func run() throws {
    let keys = AttentionKernelCatalog.keys(arch: arch, exhaustive: exhaustive)
    print("kernel".padding(66) + "regs".padding(6) + "smem".padding(9) + "stack".padding(7) + "spills".padding(8) + "compile")
    var failures = 0
    for key in keys {
      let label = "\(key)".padding(66)
      do {
        let kernel = try KernelCompiler.compile(key.program, arch: arch)
        guard let resources = kernel.resources else {
          print(label + "no ptxas resource report")
          failures += 1
          continue
        }
        let smem = resources.staticSharedMemory + key.sharedMemoryBytes
        let spills = resources.spillStores + resources.spillLoads
        let seconds = (kernel.compileSeconds * 100).rounded() / 100
        print(
          label + "\(resources.registers)".padding(6) + "\(smem)".padding(9) + "\(resources.stackFrame)".padding(7)
            + "\(spills)".padding(8) + "\(seconds) s" + (resources.spills ? "  SPILLS" : ""))
        if resources.spills { failures += 1 }
      } catch {
        print(label + "FAILED")
        print(error)
        failures += 1
      }
    }
    print("\(keys.count) kernels for \(arch), \(failures) problem(s)")
    if failures > 0 { throw ExitCode(1) }
  }
}

extension String {
  fileprivate func padding(_ width: Int) -> String {
    count >= width ? self + " " : self + String(repeating: " ", count: width - count)
  }
}
