import ArgumentParser

// Placeholder until its owner lands the real command.
struct KernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "kernels", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention kernels: not implemented yet")
    throw ExitCode(1)
  }
}
