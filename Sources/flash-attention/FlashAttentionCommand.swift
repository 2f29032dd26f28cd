#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Darwin)
  @preconcurrency import Darwin
#endif
import ArgumentParser
import FlashAttention
import FlashAttentionTools

@main
struct FlashAttentionCommand: AsyncParsableCommand {
  /// The tool's and the library's version.
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "flash-attention",
    abstract: "Exact scaled dot-product attention with FlashAttention, on NVIDIA GPUs and CPUs.",
    discussion: """
      With no subcommand it runs `demo`: attention forward and backward on random data, checked \
      against a float64 reference.
      """,
    version: version,
    subcommands: [
      DemoCommand.self, RunCommand.self, VerifyCommand.self, InfoCommand.self, BenchCommand.self,
      KernelsCommand.self,
    ],
    defaultSubcommand: DemoCommand.self)

  /// Parses, runs, and maps every error to one line on stderr and an exit code (see
  /// ``ExitStatus``); subcommands may be synchronous or async.
  static func main() async {
    // Past a file-size limit (`ulimit -f`) a write then fails with EFBIG, reported like a full
    // disk, instead of the signal killing the tool halfway through its outputs.
    signal(SIGXFSZ, SIG_IGN)
    // Line-buffered stdout even into a file or pipe: `verify` and `bench` print a result per line
    // over minutes, and a run stopped by a timeout (SIGINT, SIGTERM) must keep the lines it printed
    // (fully buffered, a killed `verify > log` left an empty log, 2026-12-07).
    setvbuf(stdout, nil, _IOLBF, 0)
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      ExitStatus.exit(for: error)
    }
  }
}
