import FlashAttentionCore
import Testing

@testable import FlashAttentionCUDA

/// The GPU standard-attention kernels (the benchmark's baseline) compile with NVRTC exactly as
/// the benchmark builds them, without spills, for both storage types.
@Suite("Standard attention kernels (NVRTC, no GPU)")
struct StandardAttentionCompileTests {
  @Test(
    "every standard attention kernel compiles without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc)"),
    arguments: [DType.bfloat16, .float16])
  func compiles(dtype: DType) throws {
    for entry in StandardAttentionKey.Entry.allCases {
      let kernel = try KernelCompiler.compile(StandardAttentionKey(entry: entry, dtype: dtype).program, arch: "sm_90a")
      let resources = try #require(kernel.resources, "no ptxas report for \(entry)")
      #expect(!resources.spills, "\(entry) \(dtype) spills")
      #expect(kernel.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "\(entry): CUBIN is not an ELF file")
    }
  }
}
