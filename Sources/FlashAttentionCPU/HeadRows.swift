import FlashAttentionCore
import _CPUFeatureShims
import _FlashAttentionCPUKernels

/// The rows of one (batch, head) slice of a `[batch, seqlen, heads, dim]` tensor: where row `i`
/// starts and how far apart rows are, in elements of `dtype`; and the kernels' ways of turning
/// rows into float32 tiles.
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

  /// Packed float32 rows of `width` floats, `leading` apart.
  init(packed: UnsafeMutablePointer<Float>, width: Int, leading: Int, count: Int) {
    base = UnsafeMutableRawPointer(packed)
    dtype = .float32
    rowStride = leading
    self.width = width
    self.count = count
  }

  /// The C kernels' view of these rows.
  var descriptor: fa_rows {
    let code: Int32 =
      switch dtype {
      case .float32: Int32(FA_DTYPE_F32)
      case .float16: Int32(FA_DTYPE_F16)
      case .bfloat16: Int32(FA_DTYPE_BF16)
      // fp8 calls are dequantised to float32 before any kernel sees a row (CPUBackend+Float8),
      // and every other call refuses fp8 at validation.
      case .float8E4M3: Int32(FA_DTYPE_F32)
      }
    return fa_rows(base: base, row_stride: rowStride, width: width, dtype: code)
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
    rows start: Int, count rows: Int, paddedRows: Int, buffer: UnsafeMutablePointer<Float>, leading: Int,
    kernels: CPUKernels
  ) -> Tile {
    if dtype == .float32, width % 16 == 0, start + paddedRows <= count {
      return Tile(rows: base.assumingMemoryBound(to: Float.self) + start * rowStride, leading: rowStride)
    }
    pack(rows: start, count: rows, paddedRows: paddedRows, into: buffer, leading: leading, kernels: kernels)
    return Tile(rows: buffer, leading: leading)
  }

  /// `tile` for rows that a product streams as its B operand (16 columns of every row per
  /// pass): copied, with row pitch `leading`, also where the rows read in place would share one
  /// L1 set (`rowsShareOneL1Set`). `paddedRows` defaults to `count`.
  func streamedTile(
    rows start: Int, count rows: Int, paddedRows: Int? = nil, buffer: UnsafeMutablePointer<Float>, leading: Int,
    kernels: CPUKernels
  ) -> Tile {
    let padded = paddedRows ?? rows
    if rowsShareOneL1Set {
      pack(rows: start, count: rows, paddedRows: padded, into: buffer, leading: leading, kernels: kernels)
      return Tile(rows: buffer, leading: leading)
    }
    return tile(rows: start, count: rows, paddedRows: padded, buffer: buffer, leading: leading, kernels: kernels)
  }

  /// Whether rows read in place would all fall into one L1 set per 16-column panel: fp32 rows
  /// (width a multiple of 16, as `tile` reads them in place) whose pitch is a multiple of 4 KiB,
  /// e.g. d = 128 with 8 heads or d = 64 with 16 heads in the `[b, s, h, d]` layout. A 96-row
  /// panel then competes for the 8 ways of a single set, and P·V, which streams a panel once per
  /// 6 queries, reads every row from L2 (docs/perf-notes/cpu.md, item 13).
  var rowsShareOneL1Set: Bool {
    dtype == .float32 && width % 16 == 0 && (rowStride * dtype.byteSize) % 4096 == 0
  }

  /// Rows `start..<start + count` as float32 rows of `leading` floats, zero-filling the columns
  /// past `width` and the rows `count..<paddedRows`.
  func pack(
    rows start: Int, count: Int, paddedRows: Int, into destination: UnsafeMutablePointer<Float>, leading: Int,
    kernels: CPUKernels
  ) {
    var rows = descriptor
    kernels.table.pointee.pack_rows(&rows, start, count, paddedRows, destination, leading)
  }

  /// Rows `start..<start + count` transposed: `destination[c * leading + r]` holds element `c`
  /// of row `start + r`; columns `count..<paddedRows` are zero-filled.
  func packTransposed(
    rows start: Int, count: Int, paddedRows: Int, into destination: UnsafeMutablePointer<Float>, leading: Int,
    kernels: CPUKernels
  ) {
    var rows = descriptor
    kernels.table.pointee.pack_transposed(&rows, start, count, paddedRows, destination, leading)
  }

  /// fp32 rows (the `rowsShareOneL1Set` case) into column panels as wide as the GEMM's blocks;
  /// the product reads them with `bPanels: rowCapacity`.
  func packPanels(
    rows start: Int, count: Int, into destination: UnsafeMutablePointer<Float>, rowCapacity: Int,
    kernels: CPUKernels
  ) {
    var rows = descriptor
    kernels.table.pointee.pack_panels(&rows, start, count, destination, rowCapacity)
  }

  /// Writes float32 rows (pitch `leading`) to rows `start..<start + count`, rounding to the
  /// storage dtype.
  func store(
    rows start: Int, count: Int, from source: UnsafePointer<Float>, leading: Int, kernels: CPUKernels
  ) {
    var rows = descriptor
    kernels.table.pointee.store_rows(&rows, start, count, source, leading)
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
}
