import FlashAttentionCore
import _FlashAttentionCPURuntime

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One forward call: work items are (batch, query head, query block), head by head and heaviest
/// first within a head so that causal and windowed problems end balanced; each item streams its
/// visible key blocks through the online softmax, skipping the blocks that are fully masked.
package struct FlashForward {
  let arguments: ForwardArguments
  let pool: WorkerPool
  let shape: AttentionShape
  let paddedDim: Int
  let paddedDimV: Int
  let queryBlocks: Int

  package init(_ arguments: ForwardArguments, pool: WorkerPool) {
    self.arguments = arguments
    self.pool = pool
    shape = arguments.shape
    paddedDim = roundUp(shape.headDim, 16)
    paddedDimV = roundUp(shape.headDimV, 16)
    queryBlocks = (shape.seqlenQ + TileSizes.queries - 1) / TileSizes.queries
  }

  /// Floats of scratch per worker.
  private var scratchFloats: Int {
    let br = TileSizes.queries
    let bc = TileSizes.keys
    return shape.headDim * br + bc * paddedDim + bc * paddedDimV + bc * br + br * paddedDimV
      + 3 * br + max(paddedDim, paddedDimV)
  }

  package func run() {
    // Blocks of one (batch, head) stay together so that both threads stream the same head's K
    // and V at the same time (shared in L3); within a head the heaviest go first, so a call
    // ends on the small blocks of its last head.
    let items = WorkOrder.heaviestFirst(
      count: shape.batch * shape.headsQ * queryBlocks, groupSize: queryBlocks
    ) { item in
      let block = item % queryBlocks
      let first = block * TileSizes.queries
      let rows = first..<min(shape.seqlenQ, first + TileSizes.queries)
      return arguments.mask.visibleKeys(forQueries: rows).count
    }
    let floats = scratchFloats
    items.withUnsafeBufferPointer { order in
      pool.run(tasks: order.count) { task, worker in
        let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
        process(item: order[task], scratch: scratch)
      }
    }
  }

  private func process(item: Int, scratch: UnsafeMutablePointer<Float>) {
    let br = TileSizes.queries
    let bc = TileSizes.keys
    let block = item % queryBlocks
    let head = (item / queryBlocks) % shape.headsQ
    let batch = item / (queryBlocks * shape.headsQ)
    let kvHead = shape.kvHead(forQueryHead: head)
    let firstQuery = block * br
    let queryCount = min(br, shape.seqlenQ - firstQuery)
    let paddedQueries = roundUp(queryCount, 16)

    let qT = scratch
    let kTile = qT + shape.headDim * br
    let vTile = kTile + bc * paddedDim
    let sTile = vTile + bc * paddedDimV
    let oTile = sTile + bc * br
    let rowMax = oTile + br * paddedDimV
    let rowSum = rowMax + br
    let alpha = rowSum + br
    let staging = alpha + br

    let qRows = HeadRows(arguments.q, batch: batch, head: head)
    let kRows = HeadRows(arguments.k, batch: batch, head: kvHead)
    let vRows = HeadRows(arguments.v, batch: batch, head: kvHead)
    qRows.packTransposed(
      rows: firstQuery, count: queryCount, paddedRows: paddedQueries, into: qT, leading: br,
      staging: staging)
    rowMax.update(repeating: -.infinity, count: br)
    rowSum.update(repeating: 0, count: br)
    oTile.update(repeating: 0, count: br * paddedDimV)

    let valuePanels = vRows.rowsShareOneL1Set
    let mask = arguments.mask
    let queries = firstQuery..<(firstQuery + queryCount)
    let keys = mask.visibleKeys(forQueries: queries)
    let softcap = arguments.options.softcap
    let unit = softcap > 0 ? 1 : arguments.scale * log2e
    var firstKey = keys.lowerBound
    while firstKey < keys.upperBound {
      let keyCount = min(bc, keys.upperBound - firstKey)
      let keyTile = kRows.tile(
        rows: firstKey, count: keyCount, paddedRows: roundUp(keyCount, TileGEMM.rowBlock), buffer: kTile,
        leading: paddedDim)
      // V in column panels when its rows, read in place, would share one L1 set; else as
      // rows (in place or packed).
      let valueTile = valuePanels
        ? nil
        : vRows.tile(rows: firstKey, count: keyCount, paddedRows: keyCount, buffer: vTile, leading: paddedDimV)
      let tileKeys = firstKey..<(firstKey + keyCount)
      let masked = !mask.isFullyVisible(queries: queries, keys: tileKeys)
      // Sᵀ = K · Qᵀ: keys are rows, the 16-lane vectors run over queries. On a tile the mask
      // cuts, the blocks without a visible pair are skipped (and masked below).
      TileGEMM.multiply(
        rows: keyCount, columns: paddedQueries, depth: shape.headDim, a: keyTile.rows, aRow: keyTile.leading,
        aK: 1, b: qT, bK: br, c: sTile, cRow: br, accumulate: false,
        columnBand: masked ? mask.queriesPerKey(firstQuery: firstQuery, firstKey: firstKey) : nil,
        depthBand: nil)
      // The next tile's K and V rows, asked for now so that they arrive during this tile's
      // softmax and P·V. Rows of one head are `heads · d` floats apart (2–4 KiB here), which the
      // hardware prefetchers do not follow across pages, so at large N every tile would
      // otherwise wait for L3 or DRAM (d = 64, N = 16384, one core: 64 → 85 GFLOP/s; see
      // docs/perf-notes/cpu.md, item 8).
      // Issued here, between the two products, the requests use load slots the softmax leaves
      // free; spread over the GEMMs they measured slower.
      let nextKey = firstKey + keyCount
      let nextCount = min(bc, keys.upperBound - nextKey)
      kRows.prefetch(rows: nextKey, count: nextCount)
      vRows.prefetch(rows: nextKey, count: nextCount)
      let tile = ScoreTile(scores: sTile, keyCount: keyCount, paddedQueries: paddedQueries)
      if softcap > 0 { tile.applySoftcap(scale: arguments.scale, cap: softcap) }
      if masked {
        tile.applyMask(mask, firstQuery: firstQuery, queryCount: queryCount, firstKey: firstKey)
      }
      if tile.softmaxStep(unit: unit, rowMax: rowMax, rowSum: rowSum, alpha: alpha) {
        rescale(oTile, rows: queryCount, by: alpha)
      }
      // O += P · V, reading P from the transposed tile; each query group sums only the keys
      // it sees.
      let keysSeen = masked ? mask.keysPerQuery(firstQuery: firstQuery, firstKey: firstKey) : nil
      if let valueTile {
        TileGEMM.multiply(
          rows: queryCount, columns: paddedDimV, depth: keyCount, a: sTile, aRow: 1, aK: br,
          b: valueTile.rows, bK: valueTile.leading, c: oTile, cRow: paddedDimV, accumulate: true,
          columnBand: nil, depthBand: keysSeen)
      } else {
        // Packed here, after the softmax, so that the prefetched rows have had the most time.
        vRows.packPanels(rows: firstKey, count: keyCount, into: vTile, rowCapacity: bc)
        var column = 0
        while column < paddedDimV {
          let panelWidth = TileGEMM.blockWidth(at: column, of: paddedDimV)
          TileGEMM.multiply(
            rows: queryCount, columns: panelWidth, depth: keyCount, a: sTile, aRow: 1, aK: br,
            b: vTile + column * bc, bK: panelWidth, c: oTile + column, cRow: paddedDimV, accumulate: true,
            columnBand: nil, depthBand: keysSeen)
          column += panelWidth
        }
      }
      firstKey += keyCount
    }
    writeOutput(
      batch: batch, head: head, firstQuery: firstQuery, queryCount: queryCount, oTile: oTile,
      rowMax: rowMax, rowSum: rowSum, unit: unit)
  }

  /// Multiplies output row `i` by `alpha[i]` where the running max grew.
  private func rescale(_ oTile: UnsafeMutablePointer<Float>, rows: Int, by alpha: UnsafePointer<Float>) {
    for row in 0..<rows where alpha[row] != 1 {
      let factor = SIMD16<Float>(repeating: alpha[row])
      var pointer = oTile + row * paddedDimV
      for _ in 0..<paddedDimV / 16 {
        TileGEMM.store(TileGEMM.load(pointer) * factor, pointer)
        pointer += 16
      }
    }
  }

  /// The epilogue: `O / sum`, and `LSE = max · unit · ln 2 + ln(sum)`; a query that saw no key
  /// gets a zero row and LSE -inf.
  private func writeOutput(
    batch: Int, head: Int, firstQuery: Int, queryCount: Int, oTile: UnsafeMutablePointer<Float>,
    rowMax: UnsafePointer<Float>, rowSum: UnsafePointer<Float>, unit: Float
  ) {
    let outRows = HeadRows(arguments.out, batch: batch, head: head)
    let lse = arguments.lse
    let lseBase = lse.baseAddress.assumingMemoryBound(to: Float.self)
      + batch * lse.strides[0] + head * lse.strides[1]
    let lseStride = lse.strides[2]
    for row in 0..<queryCount {
      let sum = rowSum[row]
      let query = firstQuery + row
      if sum > 0 {
        let inverse = SIMD16<Float>(repeating: 1 / sum)
        var pointer = oTile + row * paddedDimV
        for _ in 0..<paddedDimV / 16 {
          TileGEMM.store(TileGEMM.load(pointer) * inverse, pointer)
          pointer += 16
        }
        outRows.store(row: query, oTile + row * paddedDimV)
        lseBase[query * lseStride] = rowMax[row] * unit * ln2 + logf(sum)
      } else {
        outRows.storeZeros(row: query)
        lseBase[query * lseStride] = -.infinity
      }
    }
  }
}

/// Orders work items so that the most expensive start first (longest-processing-time
/// scheduling), which keeps threads busy to the end when item costs differ (causal, windows).
enum WorkOrder {
  static func heaviestFirst(count: Int, cost: (Int) -> Int) -> [Int] {
    heaviestFirst(count: count, groupSize: count, cost: cost)
  }

  /// Groups of `groupSize` consecutive items in their order, each group sorted heaviest first.
  static func heaviestFirst(count: Int, groupSize: Int, cost: (Int) -> Int) -> [Int] {
    let costs = (0..<count).map(cost)
    let size = max(groupSize, 1)
    return (0..<count).sorted { a, b in
      if a / size != b / size { return a < b }
      return costs[a] > costs[b] || (costs[a] == costs[b] && a < b)
    }
  }
}
