#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Settings read from the environment, Foundation-free (the library product does not link it).
package enum EnvironmentSetting {
  /// The variable's value with surrounding spaces and tabs removed; nil when unset or blank.
  package static func value(_ name: String) -> String? {
    guard let raw = getenv(name) else { return nil }
    let text = String(cString: raw).trimmedOfWhitespace
    return text.isEmpty ? nil : text
  }
}

extension String {
  /// The text without leading and trailing spaces, tabs and newlines.
  package var trimmedOfWhitespace: String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
    return String(self[first...last])
  }
}
