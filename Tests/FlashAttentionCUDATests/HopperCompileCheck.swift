import Testing

@testable import FlashAttentionCUDA

/// Compiles one Hopper kernel for sm_90a (NVRTC, no GPU) and checks its resource report: no
/// spills and no stack frame, the register cap of a 384-thread block (setmaxnreg rebalances the
/// warpgroups later, and must not be ignored), and the wgmma pipeline left intact.
func expectCleanHopperCompile(_ program: CUDAProgram, _ label: String) throws {
  let kernel = try KernelCompiler.compile(program, arch: "sm_90a")
  let resources = try #require(kernel.resources, "no ptxas report for \(label):\n\(kernel.log)")
  #expect(!resources.spills, "\(label) spills: \(kernel.log)")
  #expect(resources.stackFrame == 0, "\(label) uses a stack frame: \(kernel.log)")
  #expect(resources.registers <= 168, "\(label) uses \(resources.registers) registers")
  #expect(!kernel.log.contains("C7508"), "setmaxnreg ignored for \(label): \(kernel.log)")
  // C7514-C7517: ptxas serialized the wgmma pipeline (seen once: -20% at d = 128).
  for note in ["C7514", "C7515", "C7516", "C7517"] {
    #expect(!kernel.log.contains(note), "wgmma serialized (\(note)) in \(label): \(kernel.log)")
  }
}
