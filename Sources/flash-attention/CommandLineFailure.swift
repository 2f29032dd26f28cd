#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import ArgumentParser
import FlashAttention
import FlashAttentionTools

/// A semantic error in the command line (flags that conflict, a missing companion flag): the
/// tool prints its message on one line and exits with code 2. Throw it from any `run()`.
struct CommandLineFailure: Error, CustomStringConvertible {
  var message: String

  init(_ message: String) {
    self.message = message
  }

  var description: String { message }
}

/// How the tool ends on an error: one line on stderr, `flash-attention: error: <message>`, and
/// an exit code. Bad input — a `FlashAttentionError` about the request, a ``CommandLineFailure``,
/// an output path that cannot serve, or ArgumentParser's own parse and validation errors — exits
/// with 2; failures underneath a valid request (driver, compiler, memory, a full disk) exit with
/// 1; `--help`, `--version` and `ExitCode` keep their usual meaning.
enum ExitStatus {
  static let badInput: Int32 = 2
  static let failure: Int32 = 1

  static func exit(for error: any Error) -> Never {
    switch error {
    case let failure as FlashAttentionError:
      switch failure {
      case .invalidArgument, .unsupported, .backendUnavailable:
        fail(failure.description, code: badInput)
      case .outOfMemory, .cuda:
        fail(failure.description, code: ExitStatus.failure)
      case .compilation:
        // The compiler's log keeps its lines.
        fail(failure.description, code: ExitStatus.failure, singleLine: false)
      }
    case let failure as OutputFileError:
      fail(failure.description, code: failure.cause == .path ? badInput : ExitStatus.failure)
    case let failure as CommandLineFailure:
      fail(failure.message, code: badInput)
    default:
      let code = FlashAttentionCommand.exitCode(for: error)
      if code == .validationFailure {
        // ArgumentParser's own message, without the usage block it prints around it.
        fail(FlashAttentionCommand.message(for: error) + " (see --help)", code: badInput)
      }
      FlashAttentionCommand.exit(withError: error)
    }
  }

  /// Prints `flash-attention: error: <message>` on stderr, on one line unless told otherwise,
  /// and exits.
  static func fail(_ message: String, code: Int32, singleLine: Bool = true) -> Never {
    writeStandardError("flash-attention: error: \(singleLine ? oneLine(message) : message)\n")
    terminateProcess(code)
  }

  static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}

/// Writes `text` to stderr unbuffered (progress and errors; stdout carries the results).
func writeStandardError(_ text: String) {
  var text = text
  text.withUTF8 { bytes in
    var offset = 0
    while offset < bytes.count {
      let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
      if written <= 0 { return }
      offset += written
    }
  }
}

/// `exit(3)`, named apart from ArgumentParser's `exit(withError:)`, which shadows it in commands.
func terminateProcess(_ code: Int32) -> Never {
  exit(code)
}
