import Glibc

/// CUBINs on disk, keyed by a hash of the source, the embedded headers, options, architecture and
/// NVRTC version, so a new process skips NVRTC for kernels it compiled before.
///
/// Directory: `FLASH_ATTENTION_CACHE_DIR`, else `$XDG_CACHE_HOME/flash-attention`, else
/// `~/.cache/flash-attention`; `FLASH_ATTENTION_CACHE_DIR=off` disables it. Each entry is
/// `<entry>-<arch>-<hash>.cubin` with the source beside it (`.cu`) for debugging. Writes go to a
/// temporary file and are renamed into place, so concurrent processes never read half a file.
struct KernelDiskCache: Sendable {
  let directory: String

  /// The configured cache, or nil when disabled or no home directory is known.
  static func configured() -> KernelDiskCache? {
    guard let directory = configuredDirectory() else { return nil }
    return KernelDiskCache(directory: directory)
  }

  static func configuredDirectory() -> String? {
    if let override = ProcessEnvironment.value("FLASH_ATTENTION_CACHE_DIR") {
      return override.lowercased() == "off" ? nil : override
    }
    if let xdg = ProcessEnvironment.value("XDG_CACHE_HOME") { return xdg + "/flash-attention" }
    if let home = ProcessEnvironment.value("HOME") { return home + "/.cache/flash-attention" }
    return nil
  }

  /// Bump when the file format or the meaning of a key changes.
  static let formatVersion = "1"

  func fileStem(for program: CUDAProgram, arch: String, nvrtc: (major: Int, minor: Int)) -> String {
    var hasher = StableHash()
    for part in [
      KernelDiskCache.formatVersion, program.entry, program.source, KernelSources.digest, arch,
      "\(nvrtc.major).\(nvrtc.minor)",
    ]
      + KernelCompiler.baseOptions(arch: arch) + program.options
    {
      hasher.combine(part)
    }
    return "\(directory)/\(program.entry)-\(arch)-\(hasher.hexDigest)"
  }

  func load(_ program: CUDAProgram, arch: String, nvrtc: (major: Int, minor: Int)) -> [UInt8]? {
    let path = fileStem(for: program, arch: arch, nvrtc: nvrtc) + ".cubin"
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let read = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
      if read == 0 { break }
      bytes += chunk.prefix(read)
    }
    // A CUBIN is an ELF file; anything else is a damaged entry and is recompiled.
    return bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) ? bytes : nil
  }

  /// Best effort: a cache that cannot be written only costs a recompile next time.
  func store(_ kernel: CompiledKernel, program: CUDAProgram, nvrtc: (major: Int, minor: Int)) {
    guard makeDirectories(directory) else { return }
    let stem = fileStem(for: program, arch: kernel.arch, nvrtc: nvrtc)
    _ = write(Array(program.source.utf8), to: stem + ".cu")
    _ = write(kernel.cubin, to: stem + ".cubin")
  }

  private func write(_ bytes: [UInt8], to path: String) -> Bool {
    let temporary = path + ".tmp.\(getpid())"
    guard let file = fopen(temporary, "wb") else { return false }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    fclose(file)
    guard written == bytes.count, rename(temporary, path) == 0 else {
      unlink(temporary)
      return false
    }
    return true
  }

  private func makeDirectories(_ path: String) -> Bool {
    var prefix = ""
    for component in path.split(separator: "/", omittingEmptySubsequences: false) {
      prefix += prefix.isEmpty && path.hasPrefix("/") && component.isEmpty ? "/" : (prefix.hasSuffix("/") || prefix.isEmpty ? "" : "/") + component
      if component.isEmpty { continue }
      if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return false }
    }
    return true
  }
}

/// A 128-bit FNV-1a hash (two 64-bit lanes with different offsets), stable across processes
/// unlike `Hasher`.
struct StableHash {
  private var low: UInt64 = 0xcbf2_9ce4_8422_2325
  private var high: UInt64 = 0x6c62_272e_07bb_0142

  mutating func combine(_ text: String) {
    for byte in text.utf8 { mix(byte) }
    // A separator so ("ab", "c") and ("a", "bc") differ.
    mix(0xFF)
  }

  private mutating func mix(_ byte: UInt8) {
    low = (low ^ UInt64(byte)) &* 0x100_0000_01b3
    high = (high ^ UInt64(byte)) &* 0x100_0000_01b3 &+ 0x9e37_79b9
  }

  var hexDigest: String {
    func hex(_ value: UInt64) -> String {
      let digits = String(value, radix: 16)
      return String(repeating: "0", count: 16 - digits.count) + digits
    }
    return hex(high) + hex(low)
  }
}
