import ArgumentParser

// Placeholder until its owner lands the real command.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "info", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention info: not implemented yet")
    throw ExitCode(1)
  }
}
