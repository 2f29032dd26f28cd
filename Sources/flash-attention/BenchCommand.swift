import ArgumentParser

// Placeholder until its owner lands the real command.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "bench", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention bench: not implemented yet")
    throw ExitCode(1)
  }
}
