import ArgumentParser
import FlashAttention
import FlashAttentionTools
import FlashAttentionCPU
import FlashAttentionCUDA
import Foundation

/// `flash-attention info`: what this machine offers and why a backend is not available.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Version, backends and why one is unavailable, CPU features, GPUs, NVRTC, kernel cache.")

  func run() throws {
    print("flash-attention \(FlashAttentionCommand.version)")
    print("")
    printBackends()
    print("")
    printCPU(CPUFeatures.current)
    print("")
    printCUDA(CUDAEnvironmentReport.probe())
    printEnvironment()
  }

  /// The library's settings from the environment, when any is set.
  private func printEnvironment() {
    let settings = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("FLASH_ATTENTION_") }
    guard !settings.isEmpty else { return }
    print("")
    print("environment:")
    for (key, value) in settings.sorted(by: { $0.key < $1.key }) { print("  \(key)=\(value)") }
  }

  private func printBackends() {
    print("backends:")
    let cpu = availability { () throws(FlashAttentionError) in _ = try CPUBackend() }
    print("  cpu:       \(cpu)")
    let cuda = availability { () throws(FlashAttentionError) in _ = try CUDABackend(device: 0) }
    print("  cuda:      \(cuda)")
    let automatic: String
    do {
      let engine = try AttentionEngine(backend: .automatic)
      automatic = "\(engine.backend.name) (\(engine.selectionReason))"
    } catch {
      automatic = "none: \(error)"
    }
    print("  automatic: \(automatic)")
  }

  private func availability(_ open: () throws(FlashAttentionError) -> Void) -> String {
    do {
      try open()
      return "available"
    } catch {
      return "unavailable: \(error)"
    }
  }

  private func printCPU(_ features: CPUFeatures) {
    print("cpu:")
    print("  logical cores:    \(features.logicalCores)")
    print("  SIMD features:    \(features.available.isEmpty ? "(none found)" : features.available.joined(separator: " "))")
    let builds = CPUInstructionSet.allCases.map(\.description).joined(separator: ", ")
    print("  kernel builds:    \(builds); needs at least \(CPUFeatures.requiredLevel)")
    do {
      let running = try CPUBackend().instructionSet
      let others = CPUInstructionSet.supported.filter { $0 != running }
      print("  runs:             \(running)"
        + (others.isEmpty ? "" : " (FLASH_ATTENTION_CPU_ISA=\(others[0].rawValue) selects \(others[0].level))"))
    } catch {
      print("  runs:             nothing: \(error)")
    }
    if !features.missingRequired.isEmpty {
      print("  missing required: \(features.missingRequired.joined(separator: " "))")
    }
  }

  private func printCUDA(_ report: CUDAEnvironmentReport) {
    print("cuda:")
    print("  driver:        \(report.driverLibrary ?? "not found")" + (report.driverVersion.map { " (CUDA \($0 / 1000).\($0 % 1000 / 10))" } ?? ""))
    let nvrtcVersion = report.nvrtcVersion.map { " (version \($0.major).\($0.minor))" } ?? ""
    print("  nvrtc:         \(report.nvrtcLibrary ?? "not found")\(nvrtcVersion)")
    if report.devices.isEmpty {
      print("  devices:       none")
    }
    for device in report.devices {
      let capability = "sm_\(device.computeCapability.major)\(device.computeCapability.minor)"
      print(
        "  device \(device.ordinal):      \(device.name), \(capability), \(device.multiprocessors) SMs, "
          + ByteCountFormatting.string(device.memoryBytes))
    }
    print("  kernel cache:  \(report.cacheDirectory ?? "disabled")")
    for problem in report.problems {
      print("  problem:       \(problem)")
    }
  }
}
