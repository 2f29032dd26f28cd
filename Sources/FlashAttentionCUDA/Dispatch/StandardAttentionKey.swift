import FlashAttentionCore

/// One kernel of the standard-attention baseline (`Kernels/standard/standard_attention.cu`):
/// an entry point and a storage dtype.
package struct StandardAttentionKey: CUDAKernelKey {
  package enum Entry: String, Sendable, CaseIterable {
    /// C = A·Bᵀ per (batch, head), as scores S, probabilities P or dP.
    case scores = "standard_gemm_abt"
    /// A row softmax of S in place, and the LSE.
    case softmax = "standard_softmax"
    /// P·B.
    case product = "standard_gemm_pb"
    /// Pᵀ·B, summed over the GQA group.
    case transposedProduct = "standard_gemm_ptb"
    /// dS = P ∘ (dP − rowsum(dO ∘ O)).
    case softmaxBackward = "standard_softmax_backward"
  }

  package var entry: Entry
  /// `.float16` or `.bfloat16`.
  package var dtype: DType

  package init(entry: Entry, dtype: DType) {
    self.entry = entry
    self.dtype = dtype
  }

  package var program: CUDAProgram {
    let defines = "#define FA_BF16 \(dtype == .bfloat16 ? 1 : 0)\n"
    return CUDAProgram(entry: entry.rawValue, source: defines + KernelSources.text("standard/standard_attention.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { 256 }
  package var family: CUDAKernelFamily { .standardAttention }
  package var description: String { "\(entry.rawValue) \(dtype == .bfloat16 ? "bf16" : "fp16")" }
}
