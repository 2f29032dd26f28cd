import FlashAttention
import FlashAttentionTools
import Foundation

/// Writing machine-readable results: every command's `--json FILE` goes through here, so a
/// failed run never leaves a partial or truncated file.
enum OutputFiles {
  /// Encodes `value` as pretty-printed JSON and writes it to `path` atomically.
  ///
  /// - Parameter argument: the flag named in errors (`"--json"`).
  static func writeJSON<Value: Encodable>(_ value: Value, to path: String, argument: String = "--json") throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var bytes = [UInt8](try encoder.encode(value))
    bytes.append(UInt8(ascii: "\n"))
    var group = AtomicFileGroup()
    group.add(bytes: bytes, path: path, argument: argument)
    try group.commit()
  }
}
