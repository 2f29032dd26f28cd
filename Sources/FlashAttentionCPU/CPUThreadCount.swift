import FlashAttentionCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How many threads the CPU backend runs: the one place that reads `FLASH_ATTENTION_CPU_THREADS`.
package enum CPUThreadCount {
  /// The most threads a backend accepts. Each is an OS thread with its own scratch memory, and
  /// beyond a few per core more threads only contend; a value past this is a mistake (a huge
  /// count used to exhaust memory and crash), refused with a typed error.
  package static let maximum = 1024

  /// `requested` when given, else `FLASH_ATTENTION_CPU_THREADS` when set, else every core this
  /// process may use (at most `maximum`).
  ///
  /// - Throws: `.invalidArgument` naming `threads` or `FLASH_ATTENTION_CPU_THREADS` for anything
  ///   but a whole number from 1 to `maximum` (`0`, `-1`, `abc`, `2.5` and `1e9` alike). An empty
  ///   or blank variable counts as unset.
  package static func resolve(_ requested: Int?) throws(FlashAttentionError) -> Int {
    let variable = getenv("FLASH_ATTENTION_CPU_THREADS").map { String(cString: $0) }
    return try resolve(requested, environment: variable, cores: CPUFeatures.current.logicalCores)
  }

  /// `resolve(_:)` with the variable's value and the core count passed in.
  static func resolve(_ requested: Int?, environment: String?, cores: Int) throws(FlashAttentionError) -> Int {
    if let requested {
      guard (1...maximum).contains(requested) else {
        throw .invalidArgument(name: "threads", value: "\(requested)", reason: "must be from 1 to \(maximum)")
      }
      return requested
    }
    if let text = environment?.trimmedOfWhitespace, !text.isEmpty {
      guard let value = Int(text), (1...maximum).contains(value) else {
        throw .invalidArgument(
          name: "FLASH_ATTENTION_CPU_THREADS", value: text,
          reason: "must be a whole number from 1 to \(maximum) (unset: every core this process may use)")
      }
      return value
    }
    return min(max(cores, 1), maximum)
  }
}
