import FlashAttentionCore
import _FlashAttentionCPURuntime
import Synchronization

/// One backward call (FlashAttention-2's algorithm): D = rowsum(dO ∘ O) first, then work items
/// of (batch, kv head, key block). Each item keeps its dK and dV tile in registers' reach for
/// the whole pass over the query blocks that see it (all query heads of the GQA group), so dK
/// and dV need no synchronization; P is recomputed from the LSE, and the dQ contribution of each
/// (key block, query block) pair is added under a per-query-block spin lock (in a fixed order
/// when `options.deterministic` asks for bit-reproducible results).
///
/// The score tiles are `S = Q · Kᵀ` with queries as rows (`QueryScoreTile`): Kᵀ and Vᵀ are
/// packed once per item, and Q and dO serve as they are (rows) in every product, so no
/// transpose happens per (key block, query block) pair.
package struct FlashBackward {
  let arguments: BackwardArguments
  let pool: WorkerPool
  let shape: AttentionShape
  let paddedDim: Int
  let paddedDimV: Int
  let queryBlocks: Int
  let keyBlocks: Int

  package init(_ arguments: BackwardArguments, pool: WorkerPool) {
    self.arguments = arguments
    self.pool = pool
    shape = arguments.shape
    paddedDim = roundUp(shape.headDim, 16)
    paddedDimV = roundUp(shape.headDimV, 16)
    queryBlocks = (shape.seqlenQ + TileSizes.queries - 1) / TileSizes.queries
    keyBlocks = (shape.seqlenK + TileSizes.keys - 1) / TileSizes.keys
  }

  /// Row pitch of packed Q/K and dO tiles: 16 floats past the padded width, so that the 96
  /// rows of a 16-column panel spread over the L1 sets (a pitch of 512 bytes would put them in 8).
  private var pitch: Int { paddedDim + 16 }
  private var pitchV: Int { paddedDimV + 16 }

  private var scratchFloats: Int {
    let br = TileSizes.queries
    let bc = TileSizes.keys
    let keyTiles = shape.headDim * bc + shape.headDimV * bc + bc * pitch + bc * paddedDim + bc * paddedDimV
    let queryTiles = br * pitch + br * pitchV + br * paddedDim
    return keyTiles + queryTiles + 3 * br * bc + 2 * br + max(paddedDim, paddedDimV)
  }

  package func run() throws(FlashAttentionError) {
    let rowCount = shape.batch * shape.headsQ * shape.seqlenQ
    let rowD = UnsafeMutablePointer<Float>.allocate(capacity: max(rowCount, 1))
    defer { rowD.deallocate() }
    let accumulator = try DQAccumulator(arguments)
    defer { accumulator.release() }
    let lockCount = max(shape.batch * shape.headsQ * queryBlocks, 1)
    let locks = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: lockCount)
    for index in 0..<lockCount { (locks + index).initialize(to: Atomic(0)) }
    defer {
      locks.deinitialize(count: lockCount)
      locks.deallocate()
    }

    // D = rowsum(dO ∘ O) and a zeroed dQ accumulator, per (batch, query head).
    pool.run(tasks: shape.batch * shape.headsQ) { task, _ in
      computeRowD(batchHead: task, into: rowD + task * shape.seqlenQ)
      accumulator.zero(batch: task / shape.headsQ, head: task % shape.headsQ)
    }

    let floats = scratchFloats
    if arguments.options.deterministic {
      // One task per (batch, kv head) walks its key blocks in order, so every dQ row receives
      // its contributions in the same order on every run.
      pool.run(tasks: shape.batch * shape.headsKV) { task, worker in
        let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
        for block in 0..<keyBlocks {
          process(
            item: task * keyBlocks + block, scratch: scratch, rowD: rowD, accumulator: accumulator, locks: locks)
        }
      }
    } else {
      let items = WorkOrder.heaviestFirst(count: shape.batch * shape.headsKV * keyBlocks) { item in
        queryRange(forKeyBlock: item % keyBlocks).count
      }
      items.withUnsafeBufferPointer { order in
        pool.run(tasks: order.count) { task, worker in
          let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
          process(item: order[task], scratch: scratch, rowD: rowD, accumulator: accumulator, locks: locks)
        }
      }
    }
    if accumulator.needsConversion {
      pool.run(tasks: shape.batch * shape.headsQ) { task, _ in
        accumulator.convert(batch: task / shape.headsQ, head: task % shape.headsQ)
      }
    }
  }

  /// Queries that see at least one key of key block `block`: the inverse of the mask's band.
  private func queryRange(forKeyBlock block: Int) -> Range<Int> {
    let mask = arguments.mask
    let firstKey = block * TileSizes.keys
    let lastKey = min(shape.seqlenK, firstKey + TileSizes.keys) - 1
    let lower = mask.right.map { max(0, firstKey - mask.offset - $0) } ?? 0
    let upper = mask.left.map { min(shape.seqlenQ, lastKey - mask.offset + $0 + 1) } ?? shape.seqlenQ
    return lower < upper ? lower..<upper : 0..<0
  }

  private func computeRowD(batchHead: Int, into rowD: UnsafeMutablePointer<Float>) {
    let batch = batchHead / shape.headsQ
    let head = batchHead % shape.headsQ
    let out = arguments.out
    let dOut = arguments.dOut
    let outBase = batch * out.strides[0] + head * out.strides[2]
    let dOutBase = batch * dOut.strides[0] + head * dOut.strides[2]
    for query in 0..<shape.seqlenQ {
      var sum: Float = 0
      let o = outBase + query * out.strides[1]
      let g = dOutBase + query * dOut.strides[1]
      for column in 0..<shape.headDimV {
        sum += out.loadFloat(atElementOffset: o + column) * dOut.loadFloat(atElementOffset: g + column)
      }
      rowD[query] = sum
    }
  }

  private func process(
    item: Int, scratch: UnsafeMutablePointer<Float>, rowD: UnsafePointer<Float>,
    accumulator: DQAccumulator, locks: UnsafeMutablePointer<Atomic<Int>>
  ) {
    let br = TileSizes.queries
    let bc = TileSizes.keys
    let keyBlock = item % keyBlocks
    let kvHead = (item / keyBlocks) % shape.headsKV
    let batch = item / (keyBlocks * shape.headsKV)
    let firstKey = keyBlock * bc
    let keyCount = min(bc, shape.seqlenK - firstKey)
    // Key columns of the score tiles: every column a product over keys reads (the dK/dV
    // products run over 6-row key blocks) and a multiple of 16; at most `bc`.
    let paddedKeys = roundUp(roundUp(keyCount, TileGEMM.rowBlock), 16)

    let kT = scratch
    let vT = kT + shape.headDim * bc
    let kTile = vT + shape.headDimV * bc
    let dKTile = kTile + bc * pitch
    let dVTile = dKTile + bc * paddedDim
    let qTile = dVTile + bc * paddedDimV
    let doTile = qTile + br * pitch
    let dQTile = doTile + br * pitchV
    let pTile = dQTile + br * paddedDim
    let dsTile = pTile + br * bc
    let tanhTile = dsTile + br * bc
    let lse2 = tanhTile + br * bc
    let dRow = lse2 + br
    let staging = dRow + br

    // Kᵀ and Vᵀ once per key block (zero columns past the keys): the B operands of S = Q·Kᵀ
    // and dP = dO·Vᵀ. K as rows is dQ = dS·K's B operand.
    let kRows = HeadRows(arguments.k, batch: batch, head: kvHead)
    let vRows = HeadRows(arguments.v, batch: batch, head: kvHead)
    kRows.packTransposed(rows: firstKey, count: keyCount, paddedRows: bc, into: kT, leading: bc, staging: staging)
    vRows.packTransposed(rows: firstKey, count: keyCount, paddedRows: bc, into: vT, leading: bc, staging: staging)
    let keyTile = kRows.streamedTile(rows: firstKey, count: keyCount, buffer: kTile, leading: pitch)
    dKTile.update(repeating: 0, count: bc * paddedDim)
    dVTile.update(repeating: 0, count: bc * paddedDimV)

    let mask = arguments.mask
    let softcap = arguments.options.softcap
    let unit = softcap > 0 ? 1 : arguments.scale * log2e
    let keys = firstKey..<(firstKey + keyCount)
    let queries = queryRange(forKeyBlock: keyBlock)
    let lse = arguments.lse
    let lseBase = lse.baseAddress.assumingMemoryBound(to: Float.self)
    if !queries.isEmpty {
      let firstBlock = queries.lowerBound / br
      let lastBlock = (queries.upperBound - 1) / br
      let groupSize = shape.groupSize
      for head in (kvHead * groupSize)..<((kvHead + 1) * groupSize) {
        let qRows = HeadRows(arguments.q, batch: batch, head: head)
        let dORows = HeadRows(arguments.dOut, batch: batch, head: head)
        let lseHead = lseBase + batch * lse.strides[0] + head * lse.strides[1]
        let rowDHead = rowD + (batch * shape.headsQ + head) * shape.seqlenQ
        for block in firstBlock...lastBlock {
          let firstQuery = block * br
          let queryCount = min(br, shape.seqlenQ - firstQuery)
          // Rows the products over queries write: whole 6-row blocks, all finite.
          let paddedQueries = roundUp(queryCount, TileGEMM.rowBlock)
          let queryTile = qRows.streamedTile(
            rows: firstQuery, count: queryCount, paddedRows: paddedQueries, buffer: qTile, leading: pitch)
          let gradientTile = dORows.streamedTile(
            rows: firstQuery, count: queryCount, paddedRows: paddedQueries, buffer: doTile, leading: pitchV)
          for row in 0..<br {
            if row < queryCount {
              let value = lseHead[(firstQuery + row) * lse.strides[2]]
              // A row that saw no key (LSE -inf) has P = 0 everywhere: +inf gives 2^(-inf).
              lse2[row] = value == -.infinity ? .infinity : value * log2e
              dRow[row] = rowDHead[firstQuery + row]
            } else {
              lse2[row] = .infinity
              dRow[row] = 0
            }
          }

          let blockQueries = firstQuery..<(firstQuery + queryCount)
          let masked = !mask.isFullyVisible(queries: blockQueries, keys: keys)
          // On a tile the mask cuts, only the 6 × 16 blocks with visible pairs are computed:
          // the rest of S is masked to -inf below, and P = 0 there zeroes dS whatever dP held.
          let queriesPerKey = masked ? mask.queriesPerKey(firstQuery: firstQuery, firstKey: firstKey) : nil
          let keysPerQuery = masked ? mask.keysPerQuery(firstQuery: firstQuery, firstKey: firstKey) : nil

          // S = Q · Kᵀ, then P from the LSE.
          TileGEMM.multiply(
            rows: queryCount, columns: paddedKeys, depth: shape.headDim, a: queryTile.rows,
            aRow: queryTile.leading, aK: 1, b: kT, bK: bc, c: pTile, cRow: bc, accumulate: false,
            columnBand: keysPerQuery, depthBand: nil)
          // The next query block's rows, asked for now so that they arrive during this pair's
          // element-wise steps and products (rows of one head are `heads · d` floats apart,
          // which the hardware prefetchers do not follow across pages).
          if block < lastBlock {
            qRows.prefetch(rows: firstQuery + br, count: br)
            dORows.prefetch(rows: firstQuery + br, count: br)
          }
          let tile = QueryScoreTile(scores: pTile, rows: paddedQueries, keyCount: keyCount, paddedKeys: paddedKeys)
          if softcap > 0 { tile.applySoftcap(scale: arguments.scale, cap: softcap, tanhOut: tanhTile) }
          if masked || keyCount < paddedKeys {
            tile.applyMask(masked ? mask : nil, firstQuery: firstQuery, firstKey: firstKey)
          }
          tile.probabilities(unit: unit, lse2: lse2)
          // dP = dO · Vᵀ, then dS.
          TileGEMM.multiply(
            rows: queryCount, columns: paddedKeys, depth: shape.headDimV, a: gradientTile.rows,
            aRow: gradientTile.leading, aK: 1, b: vT, bK: bc, c: dsTile, cRow: bc, accumulate: false,
            columnBand: keysPerQuery, depthBand: nil)
          tile.scoreGradient(
            gradient: dsTile, rowD: dRow, scale: arguments.scale, tanh: softcap > 0 ? tanhTile : nil)
          // dV += Pᵀ · dO and dK += dSᵀ · Q (keys are rows, read down the tiles' columns).
          TileGEMM.multiply(
            rows: keyCount, columns: paddedDimV, depth: queryCount, a: pTile, aRow: 1, aK: bc,
            b: gradientTile.rows, bK: gradientTile.leading, c: dVTile, cRow: paddedDimV, accumulate: true,
            columnBand: nil, depthBand: queriesPerKey)
          TileGEMM.multiply(
            rows: keyCount, columns: paddedDim, depth: queryCount, a: dsTile, aRow: 1, aK: bc,
            b: queryTile.rows, bK: queryTile.leading, c: dKTile, cRow: paddedDim, accumulate: true,
            columnBand: nil, depthBand: queriesPerKey)
          // dQ += dS · K, into a private tile first, then under the query block's lock.
          TileGEMM.multiply(
            rows: queryCount, columns: paddedDim, depth: keyCount, a: dsTile, aRow: bc, aK: 1,
            b: keyTile.rows, bK: keyTile.leading, c: dQTile, cRow: paddedDim, accumulate: false,
            columnBand: nil, depthBand: keysPerQuery)
          let lock = locks + (batch * shape.headsQ + head) * queryBlocks + block
          while !lock.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {}
          accumulator.add(
            batch: batch, head: head, firstQuery: firstQuery, count: queryCount, tile: dQTile, leading: paddedDim)
          lock.pointee.store(0, ordering: .releasing)
        }
      }
    }
    let dKRows = HeadRows(arguments.dK, batch: batch, head: kvHead)
    let dVRows = HeadRows(arguments.dV, batch: batch, head: kvHead)
    for row in 0..<keyCount {
      dKRows.store(row: firstKey + row, dKTile + row * paddedDim)
      dVRows.store(row: firstKey + row, dVTile + row * paddedDimV)
    }
  }
}

/// Where dQ is summed in fp32: the dQ tensor itself when it is fp32, else a private fp32 array
/// `[batch, seqlen_q, heads_q, head_dim]` converted to dQ's dtype at the end.
struct DQAccumulator: @unchecked Sendable {
  let base: UnsafeMutablePointer<Float>
  let strides: (batch: Int, row: Int, head: Int)
  let width: Int
  let needsConversion: Bool
  let target: TensorView

  init(_ arguments: BackwardArguments) throws(FlashAttentionError) {
    let dQ = arguments.dQ
    let shape = arguments.shape
    target = dQ
    width = shape.headDim
    if dQ.dtype == .float32 {
      base = dQ.baseAddress.assumingMemoryBound(to: Float.self)
      strides = (dQ.strides[0], dQ.strides[1], dQ.strides[2])
      needsConversion = false
    } else {
      let count = shape.batch * shape.seqlenQ * shape.headsQ * shape.headDim
      base = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
      strides = (shape.seqlenQ * shape.headsQ * shape.headDim, shape.headsQ * shape.headDim, shape.headDim)
      needsConversion = true
    }
  }

  func release() {
    if needsConversion { base.deallocate() }
  }

  @inline(__always)
  private func row(batch: Int, head: Int, query: Int) -> UnsafeMutablePointer<Float> {
    base + batch * strides.batch + query * strides.row + head * strides.head
  }

  func zero(batch: Int, head: Int) {
    for query in 0..<target.shape[1] {
      row(batch: batch, head: head, query: query).update(repeating: 0, count: width)
    }
  }

  /// Adds `count` rows of `tile` (row pitch `leading`) to the rows from `firstQuery`.
  func add(batch: Int, head: Int, firstQuery: Int, count: Int, tile: UnsafePointer<Float>, leading: Int) {
    for index in 0..<count {
      let destination = row(batch: batch, head: head, query: firstQuery + index)
      let source = tile + index * leading
      for column in 0..<width { destination[column] += source[column] }
    }
  }

  /// Rounds the fp32 sums of one (batch, head) into dQ's dtype.
  func convert(batch: Int, head: Int) {
    let rows = HeadRows(target, batch: batch, head: head)
    for query in 0..<target.shape[1] {
      rows.store(row: query, row(batch: batch, head: head, query: query))
    }
  }
}
