import ArgumentParser

@main
struct FlashAttentionCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flash-attention",
    abstract: "Exact scaled dot-product attention with FlashAttention, on NVIDIA GPUs and CPUs.",
    subcommands: [
      DemoCommand.self, RunCommand.self, VerifyCommand.self, InfoCommand.self, BenchCommand.self,
      KernelsCommand.self,
    ],
    defaultSubcommand: DemoCommand.self)
}
