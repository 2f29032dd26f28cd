import FlashAttentionCore

/// The split-KV merge of the decode kernel (`Kernels/decode/combine.cu`): one kernel per value
/// head dim and dtype.
package struct DecodeCombineKey: CUDAKernelKey {
  package var headDimV: Int
  /// `.float16` or `.bfloat16`: the output's storage.
  package var dtype: DType

  package init(headDimV: Int, dtype: DType) {
    self.headDimV = headDimV
    self.dtype = dtype
  }

  /// Rows (warps) per block of the launch; the kernel's `WARPS_PER_BLOCK`.
  static let rowsPerBlock = 4

  package var program: CUDAProgram {
    let header = "#define FA_DV \(headDimV)\n#define FA_BF16 \(dtype == .bfloat16 ? 1 : 0)\n"
    return CUDAProgram(entry: "flash_decode_combine", source: header + KernelSources.text("decode/combine.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { Self.rowsPerBlock * 32 }
  package var family: CUDAKernelFamily { .flashAttention2 }
  package var description: String { "decodeCombine dv=\(headDimV) \(dtype == .bfloat16 ? "bf16" : "fp16")" }
}

/// The KV-cache append (`Kernels/decode/append.cu`): a copy of 16-bit elements, the same
/// kernel for every dtype, head dim and cache layout.
package struct KVAppendKey: CUDAKernelKey {
  package init() {}

  /// Threads per block; the kernel's `__launch_bounds__`.
  static let blockThreads = 256

  package var program: CUDAProgram {
    CUDAProgram(entry: "kv_append", source: KernelSources.text("decode/append.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { Self.blockThreads }
  package var family: CUDAKernelFamily { .flashAttention2 }
  package var description: String { "kvAppend" }
}
