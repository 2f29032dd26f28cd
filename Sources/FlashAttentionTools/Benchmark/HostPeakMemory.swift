#if canImport(Glibc)
  import Glibc
#endif

/// The peak resident memory of this process over a region, from `/proc/self/status`.
///
/// Writing `5` to `/proc/self/clear_refs` resets the high-water mark `VmHWM` to the current
/// resident size (Linux 4.0+), so a region's peak is `VmHWM` after it minus `VmRSS` before it.
/// Elsewhere, or where the reset is refused, the result is nil rather than a wrong number.
package struct HostPeakMemory: Sendable {
  private let startResident: Int?

  /// Resets the high-water mark and remembers the current resident size.
  package init() {
    startResident = HostPeakMemory.resetHighWaterMark() ? HostPeakMemory.status("VmRSS") : nil
  }

  /// Bytes above the starting resident size at the region's peak.
  package func peakBytes() -> Int? {
    guard let startResident, let highWater = HostPeakMemory.status("VmHWM") else { return nil }
    return max(0, highWater - startResident)
  }

  static func resetHighWaterMark() -> Bool {
    #if os(Linux)
      let file = open("/proc/self/clear_refs", O_WRONLY)
      if file < 0 { return false }
      defer { close(file) }
      return write(file, "5", 1) == 1
    #else
      return false
    #endif
  }

  /// A `kB` field of `/proc/self/status`, in bytes.
  static func status(_ field: String) -> Int? {
    #if os(Linux)
      guard let file = fopen("/proc/self/status", "r") else { return nil }
      defer { fclose(file) }
      var line = [CChar](repeating: 0, count: 256)
      while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix(field + ":") else { continue }
        let number = text.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
        return number.map { $0 * 1024 }
      }
      return nil
    #else
      return nil
    #endif
  }
}
