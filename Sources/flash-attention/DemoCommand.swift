import ArgumentParser

// Placeholder until its owner lands the real command.
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "demo", abstract: "(not implemented yet)")

  func run() throws {
    print("flash-attention demo: not implemented yet")
    throw ExitCode(1)
  }
}
