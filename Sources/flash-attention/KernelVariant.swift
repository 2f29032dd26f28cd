import FlashAttention
import FlashAttentionTools
import FlashAttentionCUDA

/// One compilable kernel for the `kernels` report: the sm80 FlashAttention-2 family on every
/// architecture, plus the wgmma/TMA forward and backward families on Hopper (sm_90a).
struct KernelVariant {
  var label: String
  var program: CUDAProgram
  /// Dynamic shared memory the launcher asks for (ptxas reports only the static part).
  var dynamicSharedMemory: Int
  var isHopper: Bool

  static func all(arch: String, exhaustive: Bool) -> [KernelVariant] {
    var variants = AttentionKernelCatalog.keys(arch: arch, exhaustive: exhaustive).map {
      KernelVariant(label: "\($0)", program: $0.program, dynamicSharedMemory: $0.sharedMemoryBytes, isHopper: false)
    }
    // wgmma and setmaxnreg exist only on the arch-specific sm_90a target.
    if arch == "sm_90a" {
      variants += HopperForwardKey.allVariants.map {
        KernelVariant(label: "\($0)", program: $0.program, dynamicSharedMemory: $0.sharedMemoryBytes, isHopper: true)
      }
      variants += HopperBackwardKey.allVariants.map {
        KernelVariant(label: "\($0)", program: $0.program, dynamicSharedMemory: $0.sharedMemoryBytes, isHopper: true)
      }
      variants += HopperBackwardDQKey.allVariants.map {
        KernelVariant(label: "\($0)", program: $0.program, dynamicSharedMemory: $0.sharedMemoryBytes, isHopper: true)
      }
    }
    return variants
  }
}
