/// The register-blocked micro-kernels behind every product in the CPU kernels, and their tile
/// driver.
///
/// `C[r][n..<n+16] (+)= Σ_k A[r, k] · B[k][n..<n+16]` for 6 rows at a time: each step
/// broadcasts 6 scalars of A and loads one 16-wide vector of B (two ymm registers on
/// x86-64-v3), so the 6 × 16 accumulators fill 12 of the 16 ymm registers. In the AVX-512
/// build a `SIMD16<Float>` is one zmm register, and 6 × 16 would leave 6 FMA chains for two
/// pipes of 4-cycle latency; there the driver runs 6 × 32 blocks (12 zmm accumulators, two B
/// vectors per step) and 6 × 16 only for a last 16 columns. A is addressed with two strides,
/// which lets the same kernel read a tile or its transpose (Kᵀ·Q, Pᵀ·V, dSᵀ·Q ...) without
/// copying it.
enum TileGEMM {
  typealias Vector = SIMD16<Float>

  /// Rows of C per micro-kernel call.
  static let rowBlock = 6
  /// Columns of C per micro-kernel call (one `Vector`).
  static let columnBlock = 16

  /// `C (+)= A · B` over `rows × columns`, both rounded up to the micro-kernel's 6 × 16 blocks:
  /// the caller's buffers must hold the rounded-up rows and columns (padding rows of A and
  /// padding columns of B hold finite values; what lands in C's padding is ignored).
  ///
  /// - Parameters:
  ///   - depth: the summed dimension, exact (no padding).
  ///   - a: `A[r, k]` is `a[r * aRow + k * aK]`.
  ///   - b: `B[k][n]` is `b[k * bK + n]`, contiguous in `n`.
  ///   - c: `C[r][n]` is `c[r * cRow + n]`.
  ///   - accumulate: add to C (true) or overwrite it (false).
  @inline(__always)
  static func multiply(
    rows: Int, columns: Int, depth: Int,
    a: UnsafePointer<Float>, aRow: Int, aK: Int,
    b: UnsafePointer<Float>, bK: Int,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool
  ) {
    var column = 0
    while column < columns {
      let width = blockWidth(at: column, of: columns)
      var row = 0
      while row < rows {
        block(
          width: width, depth: depth, a: a + row * aRow, aRow: aRow, aK: aK, b: b + column, bK: bK,
          c: c + row * cRow + column, cRow: cRow, accumulate: accumulate)
        row += rowBlock
      }
      column += width
    }
  }

  /// Columns per block of both drivers: 32 where the wide micro-kernel exists and 32 columns
  /// remain, else 16.
  @inline(__always)
  static func blockWidth(at column: Int, of columns: Int) -> Int {
    KernelBuild.wideMicroKernel && column + 2 * columnBlock <= columns ? 2 * columnBlock : columnBlock
  }

  /// One 6-row block of `width` columns (`blockWidth`'s 16 or 32) on the micro-kernel for it.
  @inline(__always)
  static func block(
    width: Int, depth: Int, a: UnsafePointer<Float>, aRow: Int, aK: Int, b: UnsafePointer<Float>, bK: Int,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool
  ) {
    #if FLASH_ATTENTION_AVX512
      if width > columnBlock {
        wideMicroKernel(depth: depth, a: a, aRow: aRow, aK: aK, b: b, bK: bK, c: c, cRow: cRow, accumulate: accumulate)
        return
      }
    #endif
    microKernel(depth: depth, a: a, aRow: aRow, aK: aK, b: b, bK: bK, c: c, cRow: cRow, accumulate: accumulate)
  }

  /// `multiply` for a tile that a causal or window mask cuts diagonally: only the 6-row blocks
  /// that hold visible pairs are computed. `columnBand` limits the columns of each
  /// 6-row group (the blocks left out keep whatever C held: the caller masks them), and
  /// `depthBand` limits the summed range of each group (exact: the terms left out are zero).
  /// Without bands it is the plain `multiply` (inlined here: one out-of-line copy serves every
  /// call site, and a call per tile costs nothing next to the tile's work).
  static func multiply(
    rows: Int, columns: Int, depth: Int,
    a: UnsafePointer<Float>, aRow: Int, aK: Int,
    b: UnsafePointer<Float>, bK: Int,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool,
    columnBand: Band?, depthBand: Band?
  ) {
    if columnBand == nil && depthBand == nil {
      multiply(
        rows: rows, columns: columns, depth: depth, a: a, aRow: aRow, aK: aK, b: b, bK: bK, c: c, cRow: cRow,
        accumulate: accumulate)
      return
    }
    var column = 0
    while column < columns {
      let width = blockWidth(at: column, of: columns)
      var row = 0
      while row < rows {
        defer { row += rowBlock }
        if let columnBand {
          let visible = columnBand.range(rows: row..<(row + rowBlock), limit: columns)
          if column + width <= visible.lowerBound || column >= visible.upperBound { continue }
        }
        var terms = 0..<depth
        if let depthBand { terms = depthBand.range(rows: row..<(row + rowBlock), limit: depth) }
        block(
          width: width, depth: terms.count, a: a + row * aRow + terms.lowerBound * aK, aRow: aRow, aK: aK,
          b: b + column + terms.lowerBound * bK, bK: bK, c: c + row * cRow + column, cRow: cRow,
          accumulate: accumulate)
      }
      column += width
    }
  }

  /// The indices that row `r` of a masked tile pairs with: `r + low ... r + high` (inclusive,
  /// `nil` for unbounded), the tile-local form of a causal or window mask.
  struct Band {
    let low: Int?
    let high: Int?

    /// Indices in `0..<limit` that any of `rows` pairs with (empty range when none).
    @inline(__always)
    func range(rows: Range<Int>, limit: Int) -> Range<Int> {
      let lower = low.map { max(0, rows.lowerBound + $0) } ?? 0
      let upper = high.map { min(limit, rows.upperBound - 1 + $0 + 1) } ?? limit
      return lower < upper ? lower..<upper : 0..<0
    }
  }

  #if FLASH_ATTENTION_AVX512
  /// The AVX-512 build's 6 × 32 block: `microKernel` over two adjacent 16-column vectors of B,
  /// each broadcast of A feeding two FMAs.
  @inline(__always)
  static func wideMicroKernel(
    depth: Int, a: UnsafePointer<Float>, aRow: Int, aK: Int, b: UnsafePointer<Float>, bK: Int,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool
  ) {
    var c0 = Vector(), d0 = Vector()
    var c1 = Vector(), d1 = Vector()
    var c2 = Vector(), d2 = Vector()
    var c3 = Vector(), d3 = Vector()
    var c4 = Vector(), d4 = Vector()
    var c5 = Vector(), d5 = Vector()
    if accumulate {
      c0 = load(c)
      d0 = load(c + 16)
      c1 = load(c + cRow)
      d1 = load(c + cRow + 16)
      c2 = load(c + 2 * cRow)
      d2 = load(c + 2 * cRow + 16)
      c3 = load(c + 3 * cRow)
      d3 = load(c + 3 * cRow + 16)
      c4 = load(c + 4 * cRow)
      d4 = load(c + 4 * cRow + 16)
      c5 = load(c + 5 * cRow)
      d5 = load(c + 5 * cRow + 16)
    }
    var ap = a
    var bp = b
    let a1 = aRow
    let a2 = 2 * aRow
    let a3 = 3 * aRow
    let a4 = 4 * aRow
    let a5 = 5 * aRow
    for _ in 0..<depth {
      let low = load(bp)
      let high = load(bp + 16)
      let x0 = Vector(repeating: ap[0])
      c0 = c0.addingProduct(x0, low)
      d0 = d0.addingProduct(x0, high)
      let x1 = Vector(repeating: ap[a1])
      c1 = c1.addingProduct(x1, low)
      d1 = d1.addingProduct(x1, high)
      let x2 = Vector(repeating: ap[a2])
      c2 = c2.addingProduct(x2, low)
      d2 = d2.addingProduct(x2, high)
      let x3 = Vector(repeating: ap[a3])
      c3 = c3.addingProduct(x3, low)
      d3 = d3.addingProduct(x3, high)
      let x4 = Vector(repeating: ap[a4])
      c4 = c4.addingProduct(x4, low)
      d4 = d4.addingProduct(x4, high)
      let x5 = Vector(repeating: ap[a5])
      c5 = c5.addingProduct(x5, low)
      d5 = d5.addingProduct(x5, high)
      ap += aK
      bp += bK
    }
    store(c0, c)
    store(d0, c + 16)
    store(c1, c + cRow)
    store(d1, c + cRow + 16)
    store(c2, c + 2 * cRow)
    store(d2, c + 2 * cRow + 16)
    store(c3, c + 3 * cRow)
    store(d3, c + 3 * cRow + 16)
    store(c4, c + 4 * cRow)
    store(d4, c + 4 * cRow + 16)
    store(c5, c + 5 * cRow)
    store(d5, c + 5 * cRow + 16)
  }
  #endif

  @inline(__always)
  static func microKernel(
    depth: Int, a: UnsafePointer<Float>, aRow: Int, aK: Int, b: UnsafePointer<Float>, bK: Int,
    c: UnsafeMutablePointer<Float>, cRow: Int, accumulate: Bool
  ) {
    var c0 = Vector()
    var c1 = Vector()
    var c2 = Vector()
    var c3 = Vector()
    var c4 = Vector()
    var c5 = Vector()
    if accumulate {
      c0 = load(c)
      c1 = load(c + cRow)
      c2 = load(c + 2 * cRow)
      c3 = load(c + 3 * cRow)
      c4 = load(c + 4 * cRow)
      c5 = load(c + 5 * cRow)
    }
    var ap = a
    var bp = b
    let a1 = aRow
    let a2 = 2 * aRow
    let a3 = 3 * aRow
    let a4 = 4 * aRow
    let a5 = 5 * aRow
    for _ in 0..<depth {
      let bv = load(bp)
      c0 = c0.addingProduct(Vector(repeating: ap[0]), bv)
      c1 = c1.addingProduct(Vector(repeating: ap[a1]), bv)
      c2 = c2.addingProduct(Vector(repeating: ap[a2]), bv)
      c3 = c3.addingProduct(Vector(repeating: ap[a3]), bv)
      c4 = c4.addingProduct(Vector(repeating: ap[a4]), bv)
      c5 = c5.addingProduct(Vector(repeating: ap[a5]), bv)
      ap += aK
      bp += bK
    }
    store(c0, c)
    store(c1, c + cRow)
    store(c2, c + 2 * cRow)
    store(c3, c + 3 * cRow)
    store(c4, c + 4 * cRow)
    store(c5, c + 5 * cRow)
  }

  @inline(__always)
  static func load(_ pointer: UnsafePointer<Float>) -> Vector {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
  }

  @inline(__always)
  static func load(_ pointer: UnsafeMutablePointer<Float>) -> Vector {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
  }

  @inline(__always)
  static func store(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
  }
}

/// Rounds `value` up to a multiple of `multiple`.
@inline(__always)
func roundUp(_ value: Int, _ multiple: Int) -> Int {
  (value + multiple - 1) / multiple * multiple
}
