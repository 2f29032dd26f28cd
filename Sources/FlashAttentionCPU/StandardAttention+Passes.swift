import FlashAttentionCore
import _FlashAttentionCPUKernels

/// Row-block size of the standard passes (a multiple of the micro-kernel's 6 rows).
private let standardRows = 96

/// The forward pass of `StandardAttention`: pack Kᵀ and V, then per row block S = Q·Kᵀ into
/// the full score matrix, a row softmax in place, and O = P·V.
struct StandardForward {
  let arguments: ForwardArguments
  let layout: StandardLayout
  let memory: UnsafeMutablePointer<Float>
  let pool: WorkerPool
  let kernels: CPUKernels

  /// `memory` holds `StandardLayout(arguments.shape).forwardBytes` bytes.
  init(arguments: ForwardArguments, memory: UnsafeMutablePointer<Float>, pool: WorkerPool, kernels: CPUKernels) {
    self.arguments = arguments
    layout = StandardLayout(arguments.shape)
    self.memory = memory
    self.pool = pool
    self.kernels = kernels
  }

  func run() {
    let shape = arguments.shape
    let mask = arguments.mask.clampedForKernels
    let scores = memory
    let keysT = scores + layout.scoresFloats
    let values = keysT + layout.keysTransposedFloats
    pool.run(tasks: shape.batch * shape.headsKV) { task, worker in
      let kv = StandardOperands(layout: layout, batchHead: task, kernels: kernels)
      kv.packTransposed(arguments.k, into: keysT + task * shape.headDim * layout.paddedKeys, rows: shape.seqlenK)
      kv.pack(
        arguments.v, into: values + task * layout.paddedKeys * layout.paddedDimV, rows: shape.seqlenK,
        paddedRows: layout.paddedKeys)
    }
    let blocks = (shape.seqlenQ + standardRows - 1) / standardRows
    pool.run(tasks: shape.batch * shape.headsQ * blocks) { task, worker in
      let block = task % blocks
      let batchHead = task / blocks
      let batch = batchHead / shape.headsQ
      let head = batchHead % shape.headsQ
      let kvIndex = batch * shape.headsKV + shape.kvHead(forQueryHead: head)
      let firstRow = block * standardRows
      let count = min(standardRows, shape.seqlenQ - firstRow)
      let scratch = pool.scratch(
        worker: worker, bytes: 4 * standardRows * (layout.paddedDim + layout.paddedDimV)
      ).assumingMemoryBound(to: Float.self)
      let qTile = scratch
      let oTile = scratch + standardRows * layout.paddedDim
      HeadRows(arguments.q, batch: batch, head: head).pack(
        rows: firstRow, count: count, paddedRows: roundUp(count, TileSizes.rowBlock), into: qTile,
        leading: layout.paddedDim, kernels: kernels)
      let sRows = scores + batchHead * layout.scoreFloats + firstRow * layout.paddedKeys
      kernels.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDim, a: qTile, aRow: layout.paddedDim, aK: 1,
        b: keysT + kvIndex * shape.headDim * layout.paddedKeys, bK: layout.paddedKeys, c: sRows,
        cRow: layout.paddedKeys, accumulate: false)
      let lse = arguments.lse
      let lseBase = lse.baseAddress.assumingMemoryBound(to: Float.self) + batch * lse.strides[0] + head * lse.strides[1]
      for row in 0..<count {
        lseBase[(firstRow + row) * lse.strides[2]] = softmax(
          sRows + row * layout.paddedKeys, layout: layout, visible: mask.visibleKeys(forQuery: firstRow + row),
          scale: arguments.scale, kernels: kernels)
      }
      kernels.multiply(
        rows: count, columns: layout.paddedDimV, depth: shape.seqlenK, a: sRows, aRow: layout.paddedKeys, aK: 1,
        b: values + kvIndex * layout.paddedKeys * layout.paddedDimV, bK: layout.paddedDimV, c: oTile,
        cRow: layout.paddedDimV, accumulate: false)
      HeadRows(arguments.out, batch: batch, head: head).store(
        rows: firstRow, count: count, from: oTile, leading: layout.paddedDimV, kernels: kernels)
    }
  }
}

/// The backward pass of `StandardAttention`: P recomputed into a full matrix, dP = dO·Vᵀ and
/// dS = P ∘ (dP − D) into a second one, dQ = dS·K per row block, then dK = Σ dSᵀ·Q and
/// dV = Σ Pᵀ·dO per key block, summed over the query heads of a GQA group.
struct StandardBackward {
  let arguments: BackwardArguments
  let layout: StandardLayout
  let memory: UnsafeMutablePointer<Float>
  let pool: WorkerPool
  let kernels: CPUKernels

  /// `memory` holds `StandardLayout(arguments.shape).backwardBytes` bytes.
  init(arguments: BackwardArguments, memory: UnsafeMutablePointer<Float>, pool: WorkerPool, kernels: CPUKernels) {
    self.arguments = arguments
    layout = StandardLayout(arguments.shape)
    self.memory = memory
    self.pool = pool
    self.kernels = kernels
  }

  func run() {
    let shape = arguments.shape
    let mask = arguments.mask.clampedForKernels
    let p = memory
    let ds = p + layout.scoresFloats
    let keysT = ds + layout.scoresFloats
    let keys = keysT + layout.keysTransposedFloats
    let valuesT = keys + layout.keysFloats
    let queries = valuesT + layout.valuesTransposedFloats
    let gradients = queries + layout.queriesFloats
    let rowD = gradients + layout.gradientsFloats
    let keyFloats = shape.headDim * layout.paddedKeys
    let queryFloats = layout.paddedQueries * layout.paddedDim
    let gradientFloats = layout.paddedQueries * layout.paddedDimV

    pool.run(tasks: shape.batch * shape.headsKV) { task, worker in
      let kv = StandardOperands(layout: layout, batchHead: task, kernels: kernels)
      kv.packTransposed(arguments.k, into: keysT + task * keyFloats, rows: shape.seqlenK)
      kv.pack(
        arguments.k, into: keys + task * layout.paddedKeys * layout.paddedDim, rows: shape.seqlenK,
        paddedRows: layout.paddedKeys)
      kv.packTransposed(arguments.v, into: valuesT + task * shape.headDimV * layout.paddedKeys, rows: shape.seqlenK)
    }
    pool.run(tasks: shape.batch * shape.headsQ) { task, worker in
      let qo = StandardOperands(layout: layout, batchHead: task, kernels: kernels)
      qo.pack(arguments.q, into: queries + task * queryFloats, rows: shape.seqlenQ, paddedRows: layout.paddedQueries)
      let dO = gradients + task * gradientFloats
      qo.pack(arguments.dOut, into: dO, rows: shape.seqlenQ, paddedRows: layout.paddedQueries)
      var out = HeadRows(arguments.out, batch: task / shape.headsQ, head: task % shape.headsQ).descriptor
      var packed = HeadRows(packed: dO, width: shape.headDimV, leading: layout.paddedDimV, count: shape.seqlenQ)
        .descriptor
      kernels.table.pointee.row_dot(&out, &packed, 0, shape.seqlenQ, rowD + task * layout.paddedQueries)
    }

    let blocks = (shape.seqlenQ + standardRows - 1) / standardRows
    pool.run(tasks: shape.batch * shape.headsQ * blocks) { task, worker in
      let block = task % blocks
      let batchHead = task / blocks
      let batch = batchHead / shape.headsQ
      let head = batchHead % shape.headsQ
      let kvIndex = batch * shape.headsKV + shape.kvHead(forQueryHead: head)
      let firstRow = block * standardRows
      let count = min(standardRows, shape.seqlenQ - firstRow)
      let pRows = p + batchHead * layout.scoreFloats + firstRow * layout.paddedKeys
      let dsRows = ds + batchHead * layout.scoreFloats + firstRow * layout.paddedKeys
      let qTile = queries + batchHead * queryFloats + firstRow * layout.paddedDim
      let dOTile = gradients + batchHead * gradientFloats + firstRow * layout.paddedDimV
      kernels.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDim, a: qTile, aRow: layout.paddedDim, aK: 1,
        b: keysT + kvIndex * keyFloats, bK: layout.paddedKeys, c: pRows, cRow: layout.paddedKeys,
        accumulate: false)
      for row in 0..<count {
        _ = softmax(
          pRows + row * layout.paddedKeys, layout: layout, visible: mask.visibleKeys(forQuery: firstRow + row),
          scale: arguments.scale, kernels: kernels)
      }
      kernels.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDimV, a: dOTile, aRow: layout.paddedDimV, aK: 1,
        b: valuesT + kvIndex * shape.headDimV * layout.paddedKeys, bK: layout.paddedKeys, c: dsRows,
        cRow: layout.paddedKeys, accumulate: false)
      var gradient = fa_score_gradient(
        probabilities: pRows, gradient: dsRows, tanh: nil, leading: layout.paddedKeys, rows: count,
        columns: layout.paddedKeys, row_d: rowD + batchHead * layout.paddedQueries + firstRow, scale: arguments.scale,
        row_d_low: nil)
      kernels.scoreGradient(&gradient)
      let scratch = pool.scratch(worker: worker, bytes: 4 * standardRows * layout.paddedDim)
        .assumingMemoryBound(to: Float.self)
      kernels.multiply(
        rows: count, columns: layout.paddedDim, depth: shape.seqlenK, a: dsRows, aRow: layout.paddedKeys, aK: 1,
        b: keys + kvIndex * layout.paddedKeys * layout.paddedDim, bK: layout.paddedDim, c: scratch,
        cRow: layout.paddedDim, accumulate: false)
      HeadRows(arguments.dQ, batch: batch, head: head).store(
        rows: firstRow, count: count, from: scratch, leading: layout.paddedDim, kernels: kernels)
    }

    let keyBlocks = (shape.seqlenK + standardRows - 1) / standardRows
    pool.run(tasks: shape.batch * shape.headsKV * keyBlocks) { task, worker in
      let block = task % keyBlocks
      let kvIndex = task / keyBlocks
      let batch = kvIndex / shape.headsKV
      let kvHead = kvIndex % shape.headsKV
      let firstKey = block * standardRows
      let count = min(standardRows, shape.seqlenK - firstKey)
      let scratch = pool.scratch(
        worker: worker, bytes: 4 * standardRows * (layout.paddedDim + layout.paddedDimV)
      ).assumingMemoryBound(to: Float.self)
      let dKTile = scratch
      let dVTile = scratch + standardRows * layout.paddedDim
      let group = shape.groupSize
      for head in (kvHead * group)..<((kvHead + 1) * group) {
        let batchHead = batch * shape.headsQ + head
        let first = head == kvHead * group
        // Column `firstKey + r` of dS and P is row r of dSᵀ and Pᵀ.
        kernels.multiply(
          rows: count, columns: layout.paddedDim, depth: shape.seqlenQ,
          a: ds + batchHead * layout.scoreFloats + firstKey, aRow: 1, aK: layout.paddedKeys,
          b: queries + batchHead * queryFloats, bK: layout.paddedDim, c: dKTile, cRow: layout.paddedDim,
          accumulate: !first)
        kernels.multiply(
          rows: count, columns: layout.paddedDimV, depth: shape.seqlenQ,
          a: p + batchHead * layout.scoreFloats + firstKey, aRow: 1, aK: layout.paddedKeys,
          b: gradients + batchHead * gradientFloats, bK: layout.paddedDimV, c: dVTile, cRow: layout.paddedDimV,
          accumulate: !first)
      }
      HeadRows(arguments.dK, batch: batch, head: kvHead).store(
        rows: firstKey, count: count, from: dKTile, leading: layout.paddedDim, kernels: kernels)
      HeadRows(arguments.dV, batch: batch, head: kvHead).store(
        rows: firstKey, count: count, from: dVTile, leading: layout.paddedDimV, kernels: kernels)
    }
  }
}

/// Packs one (batch, head) of a tensor into the standard passes' fp32 operand layouts.
struct StandardOperands {
  let layout: StandardLayout
  let batchHead: Int
  let kernels: CPUKernels

  private func rows(_ tensor: TensorView) -> HeadRows {
    let heads = tensor.shape[2]
    return HeadRows(tensor, batch: batchHead / heads, head: batchHead % heads)
  }

  /// Rows `[paddedRows][roundUp(width, 16)]`, padding zero-filled.
  func pack(
    _ tensor: TensorView, into destination: UnsafeMutablePointer<Float>, rows count: Int, paddedRows: Int
  ) {
    let source = rows(tensor)
    source.pack(
      rows: 0, count: count, paddedRows: paddedRows, into: destination, leading: roundUp(source.width, 16),
      kernels: kernels)
  }

  /// Transposed `[width][paddedKeys]`, padding columns zero-filled.
  func packTransposed(_ tensor: TensorView, into destination: UnsafeMutablePointer<Float>, rows count: Int) {
    rows(tensor).packTransposed(
      rows: 0, count: count, paddedRows: layout.paddedKeys, into: destination, leading: layout.paddedKeys,
      kernels: kernels)
  }
}

/// One row of the standard passes' softmax (`standard_softmax_row` in C): raw dot products
/// become probabilities over the `visible` keys, and the row's LSE is returned.
private func softmax(
  _ row: UnsafeMutablePointer<Float>, layout: StandardLayout, visible: Range<Int>, scale: Float, kernels: CPUKernels
) -> Float {
  kernels.table.pointee.standard_softmax_row(row, layout.paddedKeys, visible.lowerBound, visible.upperBound, scale)
}

/// Where the standard passes keep their operands: one allocation holding every (batch, head)'s
/// score matrix (and dS), fp32 copies of Kᵀ, V (Vᵀ, K, Q, dO in the backward pass), each padded
/// to the micro-kernel's blocks.
struct StandardLayout {
  let shape: AttentionShape
  let paddedQueries: Int
  let paddedKeys: Int
  let paddedDim: Int
  let paddedDimV: Int

  init(_ shape: AttentionShape) {
    self.shape = shape
    paddedQueries = roundUp(max(shape.seqlenQ, 1), TileSizes.rowBlock)
    paddedKeys = roundUp(max(shape.seqlenK, 1), 16)
    paddedDim = roundUp(shape.headDim, 16)
    paddedDimV = roundUp(shape.headDimV, 16)
  }

  /// Floats of one (batch, query head) score matrix.
  var scoreFloats: Int { paddedQueries * paddedKeys }
  var scoresFloats: Int { shape.batch * shape.headsQ * scoreFloats + slack }
  var keysTransposedFloats: Int { shape.batch * shape.headsKV * shape.headDim * paddedKeys }
  var valuesFloats: Int { shape.batch * shape.headsKV * paddedKeys * paddedDimV }
  var valuesTransposedFloats: Int { shape.batch * shape.headsKV * shape.headDimV * paddedKeys }
  var keysFloats: Int { shape.batch * shape.headsKV * paddedKeys * paddedDim }
  var queriesFloats: Int { shape.batch * shape.headsQ * paddedQueries * paddedDim }
  var gradientsFloats: Int { shape.batch * shape.headsQ * paddedQueries * paddedDimV }
  /// Reading 6-row blocks of a transposed matrix may run a few floats past the end.
  let slack = 64

  var forwardBytes: Int { 4 * (scoresFloats + keysTransposedFloats + valuesFloats) }
  var backwardBytes: Int {
    4 * (2 * scoresFloats + keysTransposedFloats + keysFloats + valuesTransposedFloats + queriesFloats
      + gradientsFloats + shape.batch * shape.headsQ * paddedQueries)
  }
}
