import FlashAttentionCore
import FlashAttentionTestSupport
import Testing
import _FlashAttentionKernelABI

@testable import FlashAttentionCUDA

/// The one Philox definition (`fa_philox.h`): its known answers, its NVRTC compile, and the same
/// keep mask from the CUDA compile as from the C compile the CPU kernels use.
@Suite("Dropout's Philox generator")
struct DropoutMaskTests {
  /// Random123's known-answer vectors of philox4x32_10 (kat_vectors).
  @Test("Philox 4x32-10 gives Random123's known answers")
  func knownAnswers() {
    let cases: [([UInt32], [UInt32], [UInt32])] = [
      ([0, 0, 0, 0], [0, 0], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
      ([.max, .max, .max, .max], [.max, .max], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
      (
        [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0],
        [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
      ),
    ]
    for (counter, key, expected) in cases {
      let words = fa_philox4x32_10(counter[0], counter[1], counter[2], counter[3], key[0], key[1])
      #expect([words.w0, words.w1, words.w2, words.w3] == expected, "counter \(counter) key \(key)")
    }
  }

  @Test(
    "the keep-mask kernel compiles with NVRTC without spills",
    .enabled(if: nvrtcAvailable, "skipped: NVRTC not found (pip install nvidia-cuda-nvrtc)"),
    arguments: ["sm_80", "sm_90a"])
  func compiles(arch: String) throws {
    let kernel = try KernelCompiler.compile(CUDADropoutMask.program, arch: arch)
    let resources = try #require(kernel.resources)
    #expect(!resources.spills)
  }

  @Test(
    "the GPU's mask is the CPU's, bit for bit",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"),
    arguments: [Float(0.1), 0.5, 0.9])
  func sameMaskOnGPU(_ p: Float) throws {
    let backend = try CUDABackend(device: 0)
    var dropout = AttentionDropout(probability: p, seed: 0x0123_4567_89ab_cdef, offset: 0x1_0000_0005)
    dropout.firstBatch = 1
    let (batch, heads, seqlenQ, seqlenK) = (2, 3, 129, 77)
    let gpu = try CUDADropoutMask.mask(
      dropout, batch: batch, headsQ: heads, seqlenQ: seqlenQ, seqlenK: seqlenK, device: backend.device,
      stream: backend.stream)
    let cpu = DropoutMask(dropout, headsQ: heads).mask(batch: batch, seqlenQ: seqlenQ, seqlenK: seqlenK)
    #expect(gpu == cpu)
    let kept = Double(cpu.reduce(0) { $0 + Int($1) }) / Double(cpu.count)
    #expect(abs(kept - Double(1 - p)) < 0.02)
  }
}
