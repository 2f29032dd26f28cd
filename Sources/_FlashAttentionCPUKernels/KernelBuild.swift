/// The facts of this build of the CPU kernels.
///
/// The kernel sources are compiled twice: here for x86-64-v3 (AVX2 + FMA, 16 ymm registers) and,
/// through symbolic links, in `_FlashAttentionCPUKernelsAVX512` for x86-64-v4 with
/// `FLASH_ATTENTION_AVX512` defined (AVX-512, 32 zmm registers). `FlashAttentionCPU` picks one
/// at run time from what the CPU has (docs/perf-notes/cpu.md, item 15).
package enum KernelBuild {
  #if FLASH_ATTENTION_AVX512
    /// The `-march` level the module is compiled for.
    package static let level = "x86-64-v4"
    /// Whether `TileGEMM` has its 6 × 32 micro-kernel: with `SIMD16<Float>` in one zmm
    /// register, 6 × 16 leaves only 6 independent FMA chains, too few to hide the FMA latency
    /// on two 512-bit pipes; 6 × 32 keeps 12 accumulators in flight.
    package static let wideMicroKernel = true
  #else
    package static let level = "x86-64-v3"
    /// 6 × 16 already fills 12 of the 16 ymm registers with accumulators (two per `SIMD16`).
    package static let wideMicroKernel = false
  #endif
}

/// Block sizes of the CPU kernels. In the forward pass queries are both the vector dimension
/// of Sᵀ (16 lanes) and the row dimension of P·V (6 rows), and keys are rows of K·Qᵀ; in the
/// backward pass keys are the vector dimension of S and the rows of dK and dV. So both blocks
/// are multiples of 48. 96 × 96 fp32 tiles keep the operands of one block pair within L2.
enum TileSizes {
  static let queries = 96
  static let keys = 96
}

let log2e: Float = 1.442_695_04
let ln2: Float = 0.693_147_18

/// The inner loop of `FMAPeakProbe`: 12 independent FMA chains on the widest vectors this build
/// uses (ymm for x86-64-v3, zmm for x86-64-v4), so the probe measures the ceiling of the kernels
/// that actually run.
package enum FMAChains {
  #if FLASH_ATTENTION_AVX512
    typealias Vector = SIMD16<Float>
  #else
    typealias Vector = SIMD8<Float>
  #endif

  /// Lanes per vector: FLOPs per call are `iterations · 12 · lanes · 2`.
  package static let lanes = Vector.scalarCount

  /// Runs the chains; the result depends on every step, so none is optimized away.
  @inline(never)
  package static func run(iterations: Int, seed: Float) -> Float {
    let x = Vector(repeating: 0.999_999)
    let y = Vector(repeating: 1e-7 * (seed + 1))
    var a0 = Vector(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3
    var a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7
    var a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
    for _ in 0..<iterations {
      a0 = y.addingProduct(a0, x)
      a1 = y.addingProduct(a1, x)
      a2 = y.addingProduct(a2, x)
      a3 = y.addingProduct(a3, x)
      a4 = y.addingProduct(a4, x)
      a5 = y.addingProduct(a5, x)
      a6 = y.addingProduct(a6, x)
      a7 = y.addingProduct(a7, x)
      a8 = y.addingProduct(a8, x)
      a9 = y.addingProduct(a9, x)
      a10 = y.addingProduct(a10, x)
      a11 = y.addingProduct(a11, x)
    }
    let total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
    return total.sum()
  }
}
