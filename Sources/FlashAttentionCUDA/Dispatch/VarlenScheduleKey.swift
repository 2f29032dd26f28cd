import FlashAttentionCore

/// The kernel that writes the packed schedule of a variable-length batch
/// (`Kernels/common/varlen_schedule.cu`): the work list the Hopper kernels' blocks take under
/// `CUDAKernelTuning.VarlenSchedule.packed`. It reads only the index data, so one compile
/// serves every dtype and head dim.
package struct VarlenScheduleKey: CUDAKernelKey {
  package var arch: String

  package init(arch: String) { self.arch = arch }

  package var program: CUDAProgram {
    CUDAProgram(
      entry: "flash_varlen_schedule", source: "#define FA_BF16 0\n" + KernelSources.text("common/varlen_schedule.cu"))
  }

  package var sharedMemoryBytes: Int { 0 }
  package var threads: Int { 1024 }
  package var family: CUDAKernelFamily { .flashAttention2 }
  package var description: String { "varlen_schedule \(arch)" }
}
