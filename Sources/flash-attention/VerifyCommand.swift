import ArgumentParser

// Placeholder until its owner lands the real command.
struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "verify", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention verify: not implemented yet")
    throw ExitCode(1)
  }
}
