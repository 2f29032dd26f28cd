import FlashAttentionCUDA
import Foundation

/// Writes compiled kernels to a folder, per variant `<label>.cubin`, `<label>.log` (ptxas) and
/// `<label>.cu` (the program NVRTC compiled, its #defines first), so that two builds of the
/// kernels can be compared instruction by instruction (`scripts/sass-digest.py`) and one variant
/// recompiled by hand.
enum KernelDump {
  static func write(_ kernel: CompiledKernel, program: CUDAProgram, label: String, into folder: String) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let stem = (folder as NSString).appendingPathComponent(fileName(label))
    try Data(kernel.cubin).write(to: URL(fileURLWithPath: stem + ".cubin"))
    try Data(kernel.log.utf8).write(to: URL(fileURLWithPath: stem + ".log"))
    try Data(program.source.utf8).write(to: URL(fileURLWithPath: stem + ".cu"))
  }

  /// The label with every character outside [A-Za-z0-9=._-] replaced by `_`.
  static func fileName(_ label: String) -> String {
    String(label.map { $0.isLetter || $0.isNumber || "=._-".contains($0) ? $0 : "_" })
  }
}
