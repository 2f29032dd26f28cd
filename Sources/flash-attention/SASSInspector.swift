import FlashAttentionCUDA
import Foundation

/// Reads a cubin's machine code with `cuobjdump -sass` to show that the hardware paths are
/// used: HGMMA (16-bit wgmma) or QGMMA (fp8 wgmma) and UTMALDG (TMA loads) in Hopper kernels,
/// and no local-memory traffic.
struct SASSInspector {
  struct OpcodeCounts {
    /// Warpgroup MMAs: HGMMA (16-bit operands) and QGMMA (e4m3/e5m2 operands).
    var hgmma = 0
    var utmaldg = 0
    /// LDL and STL: register spills or arrays placed in local memory.
    var localMemory = 0
  }

  let executable: String

  /// `FLASH_ATTENTION_CUOBJDUMP`, then `cuobjdump` on PATH, then the PyPI wheel
  /// `nvidia-cuda-cuobjdump` in a Python site-packages folder.
  static func locate() throws -> SASSInspector {
    let environment = ProcessInfo.processInfo.environment
    var candidates: [String] = []
    if let explicit = environment["FLASH_ATTENTION_CUOBJDUMP"] { candidates.append(explicit) }
    for folder in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(folder)/cuobjdump") }
    candidates.append("/usr/local/cuda/bin/cuobjdump")
    candidates += PythonSitePackages.folders().map { "\($0)/nvidia/cu13/bin/cuobjdump" }
    let files = FileManager.default
    guard let found = candidates.first(where: { files.isExecutableFile(atPath: $0) }) else {
      throw CommandLineFailure(
        "--sass needs cuobjdump: install it with `python3 -m pip install nvidia-cuda-cuobjdump` or set FLASH_ATTENTION_CUOBJDUMP")
    }
    return SASSInspector(executable: found)
  }

  func opcodeCounts(cubin: [UInt8]) throws -> OpcodeCounts {
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("flash-attention-\(UUID().uuidString).cubin")
    try Data(cubin).write(to: path)
    defer { try? FileManager.default.removeItem(at: path) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = ["-sass", path.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw CommandLineFailure("cuobjdump -sass failed with status \(process.terminationStatus)")
    }
    var counts = OpcodeCounts()
    for line in text.split(separator: "\n") {
      // SASS lines look like `/*0120*/  HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], ... ;`.
      guard let opcodeStart = line.range(of: "*/")?.upperBound else { continue }
      let words = line[opcodeStart...].split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard var opcode = words.first else { continue }
      if opcode.hasPrefix("@"), words.count > 1 { opcode = words[1] }  // predicated instruction
      let mnemonic = opcode.split(separator: ".").first ?? opcode
      switch mnemonic {
      case "HGMMA", "QGMMA": counts.hgmma += 1
      case "UTMALDG": counts.utmaldg += 1
      case "LDL", "STL": counts.localMemory += 1
      default: break
      }
    }
    return counts
  }
}
