/// Everything that selects one compiled kernel: head dims, dtype, mask and softcap flags, tile
/// sizes, architecture. Problem sizes (sequence lengths, batch, heads, strides) are kernel
/// parameters instead, so one compile serves every size.
///
/// Every kernel family conforms: the FlashAttention-2 kernels (`FlashAttention2Key`), the
/// Hopper ones (`HopperForwardKey`, `HopperBackwardKey`, `HopperBackwardDQKey`) and the
/// standard-attention baseline (`StandardAttentionKey`). `CUDAKernelCatalog` lists them all for
/// `flash-attention kernels`, and `KernelCache` compiles and loads each key once.
package protocol CUDAKernelKey: Hashable, Sendable, CustomStringConvertible {
  /// The NVRTC program: the key's `#define`s in front of its kernel file.
  var program: CUDAProgram { get }
  /// Dynamic shared memory the launch asks for (ptxas reports only the static part).
  var sharedMemoryBytes: Int { get }
  /// Threads per block.
  var threads: Int { get }
  var family: CUDAKernelFamily { get }
}

/// The kernel families, by the hardware paths they use.
package enum CUDAKernelFamily: String, Sendable, CaseIterable {
  /// FlashAttention-2 (mma.sync, ldmatrix, cp.async): every GPU since Ampere.
  case flashAttention2
  /// wgmma, TMA and warp specialization: sm_90a only. Their SASS must show HGMMA and UTMALDG.
  case hopper
  /// The benchmark's standard attention (S and P in device memory, fp32 CUDA-core GEMMs).
  case standardAttention
}
