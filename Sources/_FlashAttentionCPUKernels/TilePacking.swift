import FlashAttentionCore
import _CPUFeatureShims

/// The rows of one (batch, head) slice of a `[batch, seqlen, heads, dim]` tensor: where row
/// `i` starts and how far apart rows are, in elements of `dtype`.
struct HeadRows: @unchecked Sendable {
  let base: UnsafeMutableRawPointer
  let dtype: DType
  let rowStride: Int
  let width: Int
  /// Rows in the sequence.
  let count: Int

  init(_ tensor: TensorView, batch: Int, head: Int) {
    let offset = batch * tensor.strides[0] + head * tensor.strides[2]
    base = tensor.baseAddress + offset * tensor.dtype.byteSize
    dtype = tensor.dtype
    rowStride = tensor.strides[1]
    width = tensor.shape[3]
    count = tensor.shape[1]
  }

  /// A tile of rows as the kernels read it: a pointer and the distance between rows.
  struct Tile {
    let rows: UnsafeMutablePointer<Float>
    let leading: Int
  }

  /// Rows `start..<start + count` as a float32 tile whose columns are padded to 16 and whose
  /// rows `count..<paddedRows` are readable: the tensor's own memory when it already is one
  /// (fp32, width a multiple of 16, the padding rows exist), which saves a copy per tile;
  /// otherwise a packed copy in `buffer` with row pitch `leading`.
  func tile(
    rows start: Int, count rows: Int, paddedRows: Int, buffer: UnsafeMutablePointer<Float>, leading: Int
  ) -> Tile {
    if dtype == .float32, width % 16 == 0, start + paddedRows <= count {
      return Tile(rows: base.assumingMemoryBound(to: Float.self) + start * rowStride, leading: rowStride)
    }
    pack(rows: start, count: rows, paddedRows: paddedRows, into: buffer, leading: leading)
    return Tile(rows: buffer, leading: leading)
  }

  /// `tile` for rows that a product streams as its B operand (16 columns of every row per
  /// pass): copied, with row pitch `leading`, also where the rows read in place would share one
  /// L1 set (`rowsShareOneL1Set`). `paddedRows` defaults to `count`.
  func streamedTile(
    rows start: Int, count rows: Int, paddedRows: Int? = nil, buffer: UnsafeMutablePointer<Float>, leading: Int
  ) -> Tile {
    let padded = paddedRows ?? rows
    if rowsShareOneL1Set {
      pack(rows: start, count: rows, paddedRows: padded, into: buffer, leading: leading)
      return Tile(rows: buffer, leading: leading)
    }
    return tile(rows: start, count: rows, paddedRows: padded, buffer: buffer, leading: leading)
  }

  /// Whether rows read in place would all fall into one L1 set per 16-column panel: fp32 rows
  /// (width a multiple of 16, as `tile` reads them in place) whose pitch is a multiple of 4 KiB,
  /// e.g. d = 128 with 8 heads or d = 64 with 16 heads in the `[b, s, h, d]` layout. A 96-row
  /// panel then competes for the 8 ways of a single set, and P·V, which streams a panel once per
  /// 6 queries, reads every row from L2 (docs/perf-notes/cpu.md, item 13).
  var rowsShareOneL1Set: Bool {
    dtype == .float32 && width % 16 == 0 && (rowStride * dtype.byteSize) % 4096 == 0
  }

  /// Copies fp32 rows `start..<start + count` into column panels as wide as `TileGEMM`'s blocks
  /// (`TileGEMM.blockWidth`: 16, or 32 in the AVX-512 build with a last panel of 16): the panel
  /// of columns `c..<c + w` starts at `destination + c * rowCapacity` and holds each row's `w`
  /// elements contiguously (`TileGEMM`'s B with `bK = w`). Requires `rowsShareOneL1Set`'s dtype
  /// and width conditions and `rowCapacity >= count`; the panels fill `width * rowCapacity`
  /// floats.
  func packPanels(
    rows start: Int, count: Int, into destination: UnsafeMutablePointer<Float>, rowCapacity: Int
  ) {
    let source = base.assumingMemoryBound(to: Float.self) + start * rowStride
    for row in 0..<count {
      let sourceRow = source + row * rowStride
      var column = 0
      while column < width {
        let panelWidth = TileGEMM.blockWidth(at: column, of: width)
        let target = destination + column * rowCapacity + row * panelWidth
        for offset in stride(from: 0, to: panelWidth, by: 16) {
          TileGEMM.store(TileGEMM.load(sourceRow + column + offset), target + offset)
        }
        column += panelWidth
      }
    }
  }

  /// Copies rows `start..<start + count` into `destination` as float32 rows of `leading`
  /// elements, zero-filling the columns past `width` and the rows `count..<paddedRows`.
  func pack(
    rows start: Int, count: Int, paddedRows: Int, into destination: UnsafeMutablePointer<Float>,
    leading: Int
  ) {
    for row in 0..<count {
      let target = destination + row * leading
      let source = base + (start + row) * rowStride * dtype.byteSize
      convert(source, count: width, into: target)
      if leading > width { (target + width).update(repeating: 0, count: leading - width) }
    }
    if paddedRows > count {
      (destination + count * leading).update(repeating: 0, count: (paddedRows - count) * leading)
    }
  }

  /// Copies rows `start..<start + count` transposed: `destination[c * leading + r]` holds
  /// element `c` of row `start + r`; columns `count..<paddedRows` are zero-filled.
  func packTransposed(
    rows start: Int, count: Int, paddedRows: Int, into destination: UnsafeMutablePointer<Float>,
    leading: Int, staging: UnsafeMutablePointer<Float>
  ) {
    for row in 0..<count {
      let source = base + (start + row) * rowStride * dtype.byteSize
      convert(source, count: width, into: staging)
      for column in 0..<width { destination[column * leading + row] = staging[column] }
    }
    if paddedRows > count {
      for column in 0..<width {
        (destination + column * leading + count).update(repeating: 0, count: paddedRows - count)
      }
    }
  }

  /// Asks for rows `start..<start + rows` (clamped to the sequence) to be brought into L2 ahead
  /// of use, every cache line of each row. A hint: it changes no result.
  func prefetch(rows start: Int, count rows: Int) {
    let end = min(start + rows, count)
    if start >= end { return }
    let stride = rowStride * dtype.byteSize
    let bytes = width * dtype.byteSize
    var row = UInt(bitPattern: base + start * stride)
    for _ in start..<end {
      // From the line that holds the row's first byte to the one that holds its last.
      var line = row & ~63
      while line < row + UInt(bytes) {
        fa_prefetch_l2(UnsafeRawPointer(bitPattern: line))
        line += 64
      }
      row &+= UInt(bitPattern: stride)
    }
  }

  /// Writes float32 `values` (one row) to row `row`, rounding to the storage dtype.
  func store(row: Int, _ values: UnsafePointer<Float>) {
    let target = base + row * rowStride * dtype.byteSize
    switch dtype {
    case .float32:
      target.assumingMemoryBound(to: Float.self).update(from: values, count: width)
    case .float16:
      let typed = target.assumingMemoryBound(to: Float16.self)
      for column in 0..<width { typed[column] = Float16(values[column]) }
    case .bfloat16:
      let typed = target.assumingMemoryBound(to: UInt16.self)
      for column in 0..<width { typed[column] = BFloat16Conversion.bits(from: values[column]) }
    }
  }

  /// Writes zeros to row `row`.
  func storeZeros(row: Int) {
    let target = base + row * rowStride * dtype.byteSize
    target.initializeMemory(as: UInt8.self, repeating: 0, count: width * dtype.byteSize)
  }

  @inline(__always)
  private func convert(_ source: UnsafeMutableRawPointer, count: Int, into target: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .float32:
      target.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .float16:
      let typed = source.assumingMemoryBound(to: Float16.self)
      for column in 0..<count { target[column] = Float(typed[column]) }
    case .bfloat16:
      let typed = source.assumingMemoryBound(to: UInt16.self)
      for column in 0..<count { target[column] = BFloat16Conversion.float(fromBits: typed[column]) }
    }
  }
}
