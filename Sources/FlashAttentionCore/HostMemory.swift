#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Host allocations whose size depends on a caller's input: checked against the memory this
/// process can still get before anything is allocated, so a request no machine can satisfy is a
/// typed `.outOfMemory` instead of an abort in the allocator or a kill by the OOM killer.
package enum HostMemory {
  /// Allocations below this size skip the availability check (a few reads of /proc): they cannot
  /// exhaust a machine by themselves, and `posix_memalign`'s failure is still reported.
  package static let checkedFromBytes = 16 << 20

  /// `byteCount` bytes aligned to `alignment`, released with `free`.
  ///
  /// - Parameter context: what the memory is for, in errors (`"out"`, `"q"`).
  /// - Throws: `.outOfMemory` when the request exceeds ``availableBytes`` or the allocator
  ///   refuses it.
  package static func allocate(
    byteCount: Int, alignment: Int, context: String
  ) throws(FlashAttentionError) -> UnsafeMutableRawPointer {
    if byteCount >= checkedFromBytes, let available = availableBytes, byteCount > available {
      throw .outOfMemory(
        bytes: byteCount, context: "\(context), with \(ByteCountFormatting.string(available)) available,")
    }
    var pointer: UnsafeMutableRawPointer?
    guard posix_memalign(&pointer, alignment, max(byteCount, 1)) == 0, let pointer else {
      throw .outOfMemory(bytes: byteCount, context: context)
    }
    return pointer
  }

  /// The bytes this process can still allocate and touch without swapping to death: Linux's
  /// `MemAvailable` plus free swap, lowered to the room left under this process's cgroup (v2)
  /// limit; nil where neither can be read (the allocator's own failure is then the only check).
  package static var availableBytes: Int? {
    #if os(Linux)
      var result: Int?
      if let meminfo = readSmallFile("/proc/meminfo") {
        let available = meminfoValue(meminfo, key: "MemAvailable:")
        let swap = meminfoValue(meminfo, key: "SwapFree:") ?? 0
        if let available { result = CheckedSize.sum(available, swap) ?? Int.max }
      }
      if let room = cgroupRoom() { result = min(result ?? room, room) }
      return result
    #else
      return nil
    #endif
  }

  /// `memory.max - memory.current` of this process's cgroup v2, or nil without a limit.
  private static func cgroupRoom() -> Int? {
    guard let membership = readSmallFile("/proc/self/cgroup") else { return nil }
    // cgroup v2 has one line, "0::/path".
    guard let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
    let directory = "/sys/fs/cgroup" + line.dropFirst(3)
    guard let limitText = readSmallFile(directory + "/memory.max"),
      let limit = Int(limitText.trimmingSpaces()),
      let currentText = readSmallFile(directory + "/memory.current"),
      let current = Int(currentText.trimmingSpaces())
    else { return nil }  // "max" (no limit) does not parse as a number
    return max(limit - current, 0)
  }

  /// The value of a `/proc/meminfo` line (`MemAvailable:   123456 kB`), in bytes.
  private static func meminfoValue(_ text: String, key: String) -> Int? {
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
    let fields = line.dropFirst(key.count).split(separator: " ")
    guard let number = fields.first.flatMap({ Int($0) }) else { return nil }
    let unit = fields.count > 1 && fields[1] == "kB" ? 1024 : 1
    return CheckedSize.product(number, unit) ?? Int.max
  }

  /// A text file of at most 64 KiB (procfs and sysfs files report a size of 0, so read until EOF).
  private static func readSmallFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 65536 {
      let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if got < 0 && errno == EINTR { continue }
      if got <= 0 { break }
      bytes += chunk[0..<got]
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension StringProtocol {
  fileprivate func trimmingSpaces() -> Substring {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
      return Substring("")
    }
    return Substring(self[first...last])
  }
}
