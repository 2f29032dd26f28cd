import FlashAttentionCore

/// The decode benchmark's read-only L2 sweep (`Kernels/decode/l2_sweep.cu`): one compile for
/// every device of an architecture.
package struct L2SweepKey: CUDAKernelKey {
  package var arch: String

  package init(arch: String) { self.arch = arch }

  /// Threads per block; the kernel's `__launch_bounds__`.
  static let blockThreads = 256

  package var program: CUDAProgram {
    CUDAProgram(entry: "l2_sweep", source: "#define FA_BF16 0\n" + KernelSources.text("decode/l2_sweep.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { Self.blockThreads }
  package var family: CUDAKernelFamily { .flashAttention2 }
  package var description: String { "l2_sweep \(arch)" }
}
