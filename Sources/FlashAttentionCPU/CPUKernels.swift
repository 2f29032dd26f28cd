import _FlashAttentionCPUKernels

/// The vector kernels of one instruction set: a table of C functions (one build of
/// `_FlashAttentionCPUKernels` per instruction set, compiled with target attributes), handed
/// out only where `cpuid` says the CPU runs it. Every method is one tile-level operation; the
/// tiling, the work order and the threads stay in Swift, which needs no CPU target flag for
/// that (it holds no vector arithmetic).
struct CPUKernels: @unchecked Sendable {
  /// Immutable static data in the C target.
  let table: UnsafePointer<fa_cpu_kernels>

  /// The table for `instructionSet`, or nil where this CPU cannot run it.
  init?(_ instructionSet: CPUInstructionSet) {
    let isa = instructionSet == .avx512 ? FA_ISA_AVX512 : FA_ISA_AVX2
    guard let table = fa_cpu_kernels_for(Int32(isa)) else { return nil }
    self.table = table
  }

  /// Columns of the widest GEMM block, the width of `packPanels`' panels (16 or 32).
  var wideColumns: Int { Int(table.pointee.wide_columns) }

  /// `C (+)= scale · A · B` on the micro-kernel's blocks (`fa_gemm` in the C header has the
  /// layout rules); bands skip the blocks a mask leaves empty.
  @inline(__always)
  func multiply(
    rows: Int, columns: Int, depth: Int,
    a: UnsafePointer<Float>, aRow: Int, aK: Int,
    b: UnsafePointer<Float>, bK: Int, bPanels: Int = 0,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool, scale: Float = 1,
    columnBand: TileBand? = nil, depthBand: TileBand? = nil
  ) {
    var parameters = fa_gemm(
      rows: rows, columns: columns, depth: depth, a: a, a_row: aRow, a_k: aK, b: b, b_k: bK, b_panels: bPanels,
      c: c, c_row: cRow, accumulate: accumulate, scale: scale, column_band: TileBand.c(columnBand),
      depth_band: TileBand.c(depthBand))
    table.pointee.gemm(&parameters)
  }

  @inline(__always)
  func forwardStep(_ step: inout fa_forward_step) { table.pointee.forward_step(&step) }

  @inline(__always)
  func forwardEpilogue(_ epilogue: inout fa_forward_epilogue) { table.pointee.forward_epilogue(&epilogue) }

  @inline(__always)
  func backwardProbabilities(_ tile: inout fa_backward_probabilities) {
    table.pointee.backward_probabilities(&tile)
  }

  @inline(__always)
  func scoreGradient(_ gradient: inout fa_score_gradient) { table.pointee.score_gradient(&gradient) }
}

/// The tile-local form of a causal or window mask: row `r` pairs with the indices
/// `r + low ... r + high` (inclusive; `nil` is unbounded).
struct TileBand {
  let low: Int?
  let high: Int?

  static func c(_ band: TileBand?) -> fa_band {
    guard let band else { return fa_band(low: 0, high: 0, has_low: false, has_high: false, enabled: false) }
    return fa_band(
      low: band.low ?? 0, high: band.high ?? 0, has_low: band.low != nil, has_high: band.high != nil, enabled: true)
  }
}
