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
  /// `MemAvailable` plus free swap, lowered to the room left under this process's cgroup (v1 or
  /// v2) limit; nil where neither can be read (the allocator's own failure is then the only check).
  package static var availableBytes: Int? {
    #if os(Linux)
      var result: Int?
      if let meminfo = readSmallFile("/proc/meminfo") {
        let available = statValue(meminfo, key: "MemAvailable:")
        let swap = statValue(meminfo, key: "SwapFree:") ?? 0
        if let available { result = CheckedSize.sum(available, swap) ?? Int.max }
      }
      if let room = cgroupRoom() { result = min(result ?? room, room) }
      return result
    #else
      return nil
    #endif
  }

  /// The room left under this process's cgroup memory limit, or nil without a limit: the limit
  /// less the usage, where the page cache in the usage counts as room (the kernel reclaims it
  /// before it kills anyone). Containers usually mount their own cgroup at the root of the
  /// hierarchy, so the root is tried after the path `/proc/self/cgroup` names.
  private static func cgroupRoom() -> Int? {
    let v2 = (limit: "memory.max", usage: "memory.current", cache: "file ")
    let v1 = (limit: "memory.limit_in_bytes", usage: "memory.usage_in_bytes", cache: "total_cache ")
    var candidates: [(directory: String, files: (limit: String, usage: String, cache: String))] = []
    // Lines are "0::/path" (v2) or "4:memory:/path" (v1).
    for line in (readSmallFile("/proc/self/cgroup") ?? "").split(separator: "\n") {
      let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
      guard fields.count == 3 else { continue }
      if fields[0] == "0" && fields[1].isEmpty {
        candidates.append(("/sys/fs/cgroup" + fields[2], v2))
      } else if fields[1].split(separator: ",").contains("memory") {
        candidates.append(("/sys/fs/cgroup/memory" + fields[2], v1))
      }
    }
    candidates += [("/sys/fs/cgroup", v2), ("/sys/fs/cgroup/memory", v1)]
    for (directory, files) in candidates {
      guard let limitText = readSmallFile(directory + "/" + files.limit),
        let usageText = readSmallFile(directory + "/" + files.usage)
      else { continue }
      // "max" (v2) or a page-rounded Int.max (v1) means no limit.
      guard let limit = Int(limitText.trimmingSpaces()), limit < CheckedSize.maximumBytes,
        let usage = Int(usageText.trimmingSpaces())
      else { return nil }
      let cache = readSmallFile(directory + "/memory.stat").flatMap { statValue($0, key: files.cache) } ?? 0
      return max(limit - usage + min(cache, usage), 0)
    }
    return nil
  }

  /// The value of a `/proc/meminfo` line (`MemAvailable:   123456 kB`) or a cgroup
  /// `memory.stat` line (`file 123456`), in bytes.
  private static func statValue(_ text: String, key: String) -> Int? {
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
