import ArgumentParser

// Placeholder until its owner lands the real command.
struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "run", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention run: not implemented yet")
    throw ExitCode(1)
  }
}
