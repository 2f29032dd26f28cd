import FlashAttentionCore

/// The kernel that clears the rows of a packed variable-length tensor that no sequence computes
/// (`Kernels/common/varlen_clear.cu`): output and gradient rows 0, LSE -inf. It moves 16-bit
/// elements, so one compile serves fp16 and bf16 and every head dim.
package struct VarlenClearKey: CUDAKernelKey {
  package var arch: String

  package init(arch: String) { self.arch = arch }

  package var program: CUDAProgram {
    CUDAProgram(entry: "flash_varlen_clear", source: "#define FA_BF16 0\n" + KernelSources.text("common/varlen_clear.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { 256 }
  package var family: CUDAKernelFamily { .flashAttention2 }
  package var description: String { "varlen_clear \(arch)" }
}
