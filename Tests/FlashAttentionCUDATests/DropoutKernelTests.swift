import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// Dropout in the FlashAttention-2 kernels: every dropout variant of the catalog compiles without
/// spills (NVRTC, no GPU), only dropout keys carry it, and dropout calls route to those kernels
/// off sm_90a (on it, the forward runs the Hopper kernel unless `--dropout-kernels sm80`).
/// On a GPU, `GPUAttentionTests.verifyMatrix` runs the verify matrix's dropout problems against
/// the reference given the same keep mask.
@Suite("Dropout kernels")
struct DropoutKernelTests {
  @Test(
    "the dropout variants compile without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc or set FLASH_ATTENTION_NVRTC)"),
    arguments: ["sm_80", "sm_90a"])
  func compiles(arch: String) throws {
    let keys = CUDAKernelCatalog.flashAttention2Keys(arch: arch).filter(\.dropout)
    #expect(!keys.isEmpty)
    for key in keys {
      let resources = try #require(try KernelCompiler.compile(key.program, arch: arch).resources, "no ptxas report for \(key)")
      #expect(!resources.spills, "\(key) spills: \(resources.spillStores) B stored, \(resources.spillLoads) B loaded")
      #expect(resources.stackFrame == 0, "\(key) has a \(resources.stackFrame) B stack frame")
    }
  }

  @Test("only dropout keys define FA_DROPOUT, and only forward and key/value keys are dropout keys")
  func plainProgramsUnchanged() {
    for key in CUDAKernelCatalog.flashAttention2Keys(arch: "sm_90a") {
      #expect(key.program.source.contains("#define FA_DROPOUT") == key.dropout, "\(key)")
      if key.dropout { #expect(key.kind == .forward || key.kind == .backwardKeyValue) }
    }
  }

  @Test("dropout calls run the FlashAttention-2 kernels with the dropout flag: off sm_90a, and on it with --dropout-kernels sm80")
  func routing() throws {
    let shape = AttentionShape(batch: 1, seqlenQ: 128, seqlenK: 128, headsQ: 2, headDim: 128)
    let q = HostTensor(shape: shape.qShape, dtype: .bfloat16), k = HostTensor(shape: shape.kShape, dtype: .bfloat16)
    let v = HostTensor(shape: shape.vShape, dtype: .bfloat16), out = HostTensor(shape: shape.oShape, dtype: .bfloat16)
    let lse = HostTensor(shape: shape.lseShape, dtype: .float32)
    let options = AttentionOptions(dropout: AttentionDropout(probability: 0.1, seed: 1))
    let arguments = try ForwardArguments(q: q.view, k: k.view, v: v.view, out: out.view, lse: lse.view, options: options)
    // (The Hopper route on sm_90a: DropoutHopperTests.)
    for (arch, tuning) in [("sm_80", CUDAKernelTuning()), ("sm_90a", CUDAKernelTuning.dropoutOnSM80)] {
      guard case let .flashAttention2(key) = KernelSelection.forward(arguments, arch: arch, tuning: tuning) else {
        Issue.record("a dropout forward on \(arch) with \(tuning.dropoutKernels) chose the Hopper kernel")
        continue
      }
      #expect(key.dropout)
    }
  }
}
