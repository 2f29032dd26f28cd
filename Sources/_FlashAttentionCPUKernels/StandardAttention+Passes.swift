import FlashAttentionCore
import _FlashAttentionCPURuntime

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Row-block size of the standard passes (a multiple of the micro-kernel's 6 rows).
private let standardRows = 96

/// The forward pass of `StandardAttention`: pack Kᵀ and V, then per row block S = Q·Kᵀ into
/// the full score matrix, a row softmax in place, and O = P·V.
package struct StandardForward {
  let arguments: ForwardArguments
  let layout: StandardLayout
  let memory: UnsafeMutablePointer<Float>
  let pool: WorkerPool

  /// `memory` holds `StandardLayout(arguments.shape).forwardBytes` bytes.
  package init(arguments: ForwardArguments, memory: UnsafeMutablePointer<Float>, pool: WorkerPool) {
    self.arguments = arguments
    layout = StandardLayout(arguments.shape)
    self.memory = memory
    self.pool = pool
  }

  package func run() {
    let shape = arguments.shape
    let scores = memory
    let keysT = scores + layout.scoresFloats
    let values = keysT + layout.keysTransposedFloats
    pool.run(tasks: shape.batch * shape.headsKV) { task, worker in
      let kv = StandardOperands(layout: layout, batchHead: task, pool: pool, worker: worker)
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
        rows: firstRow, count: count, paddedRows: roundUp(count, TileGEMM.rowBlock), into: qTile,
        leading: layout.paddedDim)
      let sRows = scores + batchHead * layout.scoreFloats + firstRow * layout.paddedKeys
      TileGEMM.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDim, a: qTile, aRow: layout.paddedDim, aK: 1,
        b: keysT + kvIndex * shape.headDim * layout.paddedKeys, bK: layout.paddedKeys, c: sRows,
        cRow: layout.paddedKeys, accumulate: false)
      let lse = arguments.lse
      let lseBase = lse.baseAddress.assumingMemoryBound(to: Float.self) + batch * lse.strides[0] + head * lse.strides[1]
      for row in 0..<count {
        lseBase[(firstRow + row) * lse.strides[2]] = StandardSoftmax.normalize(
          sRows + row * layout.paddedKeys, paddedKeys: layout.paddedKeys,
          visible: arguments.mask.visibleKeys(forQuery: firstRow + row), scale: arguments.scale)
      }
      TileGEMM.multiply(
        rows: count, columns: layout.paddedDimV, depth: shape.seqlenK, a: sRows, aRow: layout.paddedKeys, aK: 1,
        b: values + kvIndex * layout.paddedKeys * layout.paddedDimV, bK: layout.paddedDimV, c: oTile,
        cRow: layout.paddedDimV, accumulate: false)
      let out = HeadRows(arguments.out, batch: batch, head: head)
      for row in 0..<count { out.store(row: firstRow + row, oTile + row * layout.paddedDimV) }
    }
  }
}

/// The backward pass of `StandardAttention`: P recomputed into a full matrix, dP = dO·Vᵀ and
/// dS = P ∘ (dP − D) into a second one, dQ = dS·K per row block, then dK = Σ dSᵀ·Q and
/// dV = Σ Pᵀ·dO per key block, summed over the query heads of a GQA group.
package struct StandardBackward {
  let arguments: BackwardArguments
  let layout: StandardLayout
  let memory: UnsafeMutablePointer<Float>
  let pool: WorkerPool

  /// `memory` holds `StandardLayout(arguments.shape).backwardBytes` bytes.
  package init(arguments: BackwardArguments, memory: UnsafeMutablePointer<Float>, pool: WorkerPool) {
    self.arguments = arguments
    layout = StandardLayout(arguments.shape)
    self.memory = memory
    self.pool = pool
  }

  package func run() {
    let shape = arguments.shape
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
      let kv = StandardOperands(layout: layout, batchHead: task, pool: pool, worker: worker)
      kv.packTransposed(arguments.k, into: keysT + task * keyFloats, rows: shape.seqlenK)
      kv.pack(
        arguments.k, into: keys + task * layout.paddedKeys * layout.paddedDim, rows: shape.seqlenK,
        paddedRows: layout.paddedKeys)
      kv.packTransposed(arguments.v, into: valuesT + task * shape.headDimV * layout.paddedKeys, rows: shape.seqlenK)
    }
    pool.run(tasks: shape.batch * shape.headsQ) { task, worker in
      let qo = StandardOperands(layout: layout, batchHead: task, pool: pool, worker: worker)
      qo.pack(arguments.q, into: queries + task * queryFloats, rows: shape.seqlenQ, paddedRows: layout.paddedQueries)
      let dO = gradients + task * gradientFloats
      qo.pack(arguments.dOut, into: dO, rows: shape.seqlenQ, paddedRows: layout.paddedQueries)
      let out = arguments.out
      let base = (task / shape.headsQ) * out.strides[0] + (task % shape.headsQ) * out.strides[2]
      for row in 0..<shape.seqlenQ {
        var sum: Float = 0
        for column in 0..<shape.headDimV {
          sum += out.loadFloat(atElementOffset: base + row * out.strides[1] + column)
            * dO[row * layout.paddedDimV + column]
        }
        rowD[task * layout.paddedQueries + row] = sum
      }
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
      TileGEMM.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDim, a: qTile, aRow: layout.paddedDim, aK: 1,
        b: keysT + kvIndex * keyFloats, bK: layout.paddedKeys, c: pRows, cRow: layout.paddedKeys,
        accumulate: false)
      for row in 0..<count {
        _ = StandardSoftmax.normalize(
          pRows + row * layout.paddedKeys, paddedKeys: layout.paddedKeys,
          visible: arguments.mask.visibleKeys(forQuery: firstRow + row), scale: arguments.scale)
      }
      TileGEMM.multiply(
        rows: count, columns: layout.paddedKeys, depth: shape.headDimV, a: dOTile, aRow: layout.paddedDimV, aK: 1,
        b: valuesT + kvIndex * shape.headDimV * layout.paddedKeys, bK: layout.paddedKeys, c: dsRows,
        cRow: layout.paddedKeys, accumulate: false)
      let scale = SIMD16<Float>(repeating: arguments.scale)
      for row in 0..<count {
        let d = SIMD16<Float>(repeating: rowD[batchHead * layout.paddedQueries + firstRow + row])
        let pRow = pRows + row * layout.paddedKeys
        let dsRow = dsRows + row * layout.paddedKeys
        for column in stride(from: 0, to: layout.paddedKeys, by: 16) {
          let value = TileGEMM.load(pRow + column) * (TileGEMM.load(dsRow + column) - d) * scale
          TileGEMM.store(value, dsRow + column)
        }
      }
      let scratch = pool.scratch(worker: worker, bytes: 4 * standardRows * layout.paddedDim)
        .assumingMemoryBound(to: Float.self)
      TileGEMM.multiply(
        rows: count, columns: layout.paddedDim, depth: shape.seqlenK, a: dsRows, aRow: layout.paddedKeys, aK: 1,
        b: keys + kvIndex * layout.paddedKeys * layout.paddedDim, bK: layout.paddedDim, c: scratch,
        cRow: layout.paddedDim, accumulate: false)
      let dQ = HeadRows(arguments.dQ, batch: batch, head: head)
      for row in 0..<count { dQ.store(row: firstRow + row, scratch + row * layout.paddedDim) }
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
        TileGEMM.multiply(
          rows: count, columns: layout.paddedDim, depth: shape.seqlenQ,
          a: ds + batchHead * layout.scoreFloats + firstKey, aRow: 1, aK: layout.paddedKeys,
          b: queries + batchHead * queryFloats, bK: layout.paddedDim, c: dKTile, cRow: layout.paddedDim,
          accumulate: !first)
        TileGEMM.multiply(
          rows: count, columns: layout.paddedDimV, depth: shape.seqlenQ,
          a: p + batchHead * layout.scoreFloats + firstKey, aRow: 1, aK: layout.paddedKeys,
          b: gradients + batchHead * gradientFloats, bK: layout.paddedDimV, c: dVTile, cRow: layout.paddedDimV,
          accumulate: !first)
      }
      let dK = HeadRows(arguments.dK, batch: batch, head: kvHead)
      let dV = HeadRows(arguments.dV, batch: batch, head: kvHead)
      for row in 0..<count {
        dK.store(row: firstKey + row, dKTile + row * layout.paddedDim)
        dV.store(row: firstKey + row, dVTile + row * layout.paddedDimV)
      }
    }
  }
}

/// Packs one (batch, head) of a tensor into the standard passes' fp32 operand layouts.
struct StandardOperands {
  let layout: StandardLayout
  let batchHead: Int
  let pool: WorkerPool
  let worker: Int

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
      rows: 0, count: count, paddedRows: paddedRows, into: destination, leading: roundUp(source.width, 16))
  }

  /// Transposed `[width][paddedKeys]`, padding columns zero-filled.
  func packTransposed(_ tensor: TensorView, into destination: UnsafeMutablePointer<Float>, rows count: Int) {
    let source = rows(tensor)
    let staging = pool.scratch(worker: worker, bytes: 4 * max(source.width, 16)).assumingMemoryBound(to: Float.self)
    source.packTransposed(
      rows: 0, count: count, paddedRows: layout.paddedKeys, into: destination, leading: layout.paddedKeys,
      staging: staging)
  }
}

/// The row softmax of standard attention, vectorized along the row.
enum StandardSoftmax {
  /// Turns raw dot products `row[0..<paddedKeys]` into probabilities `softmax(scale · s)` over
  /// the `visible` keys (0 elsewhere, including padding) and returns the row's LSE (-inf and
  /// an all-zero row when no key is visible).
  static func normalize(
    _ row: UnsafeMutablePointer<Float>, paddedKeys: Int, visible: Range<Int>, scale: Float
  ) -> Float {
    typealias Vector = SIMD16<Float>
    if visible.isEmpty {
      row.update(repeating: 0, count: paddedKeys)
      return -.infinity
    }
    row.update(repeating: -.infinity, count: visible.lowerBound)
    (row + visible.upperBound).update(repeating: -.infinity, count: paddedKeys - visible.upperBound)
    var maxVector = Vector(repeating: -.infinity)
    for column in stride(from: 0, to: paddedKeys, by: 16) {
      maxVector = VectorMath.max(maxVector, TileGEMM.load(row + column))
    }
    var rowMax = -Float.infinity
    for lane in 0..<16 { rowMax = max(rowMax, maxVector[lane]) }
    let unit = Vector(repeating: scale * log2e)
    let offset = Vector(repeating: -rowMax * scale * log2e)
    var sumVector = Vector()
    for column in stride(from: 0, to: paddedKeys, by: 16) {
      let p = VectorMath.exp2(offset.addingProduct(TileGEMM.load(row + column), unit))
      TileGEMM.store(p, row + column)
      sumVector += p
    }
    let sum = sumVector.sum()
    let inverse = Vector(repeating: 1 / sum)
    for column in stride(from: 0, to: paddedKeys, by: 16) {
      TileGEMM.store(TileGEMM.load(row + column) * inverse, row + column)
    }
    return rowMax * scale + logf(sum)
  }
}

/// Where the standard passes keep their operands: one allocation holding every (batch, head)'s
/// score matrix (and dS), fp32 copies of Kᵀ, V (Vᵀ, K, Q, dO in the backward pass), each padded
/// to the micro-kernel's blocks.
package struct StandardLayout {
  let shape: AttentionShape
  let paddedQueries: Int
  let paddedKeys: Int
  let paddedDim: Int
  let paddedDimV: Int

  package init(_ shape: AttentionShape) {
    self.shape = shape
    paddedQueries = roundUp(max(shape.seqlenQ, 1), TileGEMM.rowBlock)
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

  package var forwardBytes: Int { 4 * (scoresFloats + keysTransposedFloats + valuesFloats) }
  package var backwardBytes: Int {
    4 * (2 * scoresFloats + keysTransposedFloats + keysFloats + valuesTransposedFloats + queriesFloats
      + gradientsFloats + shape.batch * shape.headsQ * paddedQueries)
  }
}
