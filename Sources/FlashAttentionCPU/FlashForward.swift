import FlashAttentionCore
import _FlashAttentionCPUKernels

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One forward call: work items are (batch, query head, query block), head by head and heaviest
/// first within a head so that causal and windowed problems end balanced; each item streams its
/// visible key blocks through the online softmax, skipping the blocks that are fully masked.
struct FlashForward {
  /// What a call produces: the attention output and LSE, or the backward pass's row statistics
  /// at large scores (`FlashBackward`).
  enum Results {
    case attention
    case rowStatistics(RowStatistics)
  }

  /// Each query row's max and sum of the softmax and `D = Σ_j P_j · dP_j` with
  /// `dP_j = dO · v_j` (the same products, bit for bit, as the backward pass's), at
  /// `[(batch · heads_q + head) · seqlen_q + row]`; no P·V.
  struct RowStatistics {
    let max: UnsafeMutablePointer<Float>
    let sum: UnsafeMutablePointer<Float>
    let d: UnsafeMutablePointer<Float>
    /// D's low part (D = d + dLow) where D came from sums kept in double; else 0.
    let dLow: UnsafeMutablePointer<Float>
    let dOut: TensorView
  }

  let arguments: ForwardArguments
  let pool: WorkerPool
  let kernels: CPUKernels
  let results: Results
  let shape: AttentionShape
  let mask: AttentionMask
  let paddedDim: Int
  let paddedDimV: Int
  let queryBlocks: Int
  /// Key chunks per (batch, head, query block), run as separate work items and merged by their
  /// softmax statistics (split-KV): how a decode step with few heads and one query keeps every
  /// thread busy. 1 runs each item over all its keys.
  let keySplits: Int

  /// - Parameter keySplits: key chunks per work item; 0 chooses: enough chunks for every thread
  ///   to have two items when the (batch, head, query block) items alone would leave threads
  ///   idle, each chunk at least two key tiles long.
  init(
    _ arguments: ForwardArguments, pool: WorkerPool, kernels: CPUKernels, results: Results = .attention,
    keySplits: Int = 0
  ) {
    self.arguments = arguments
    self.pool = pool
    self.kernels = kernels
    self.results = results
    shape = arguments.shape
    mask = arguments.mask.clampedForKernels
    paddedDim = roundUp(shape.headDim, 16)
    paddedDimV = roundUp(shape.headDimV, 16)
    queryBlocks = (shape.seqlenQ + TileSizes.queries - 1) / TileSizes.queries
    let items = shape.batch * shape.headsQ * queryBlocks
    let keyTiles = (shape.seqlenK + TileSizes.keys - 1) / TileSizes.keys
    if case .rowStatistics = results {
      self.keySplits = 1
    } else if keySplits > 0 {
      self.keySplits = max(1, min(keySplits, keyTiles))
    } else if items >= pool.threadCount {
      self.keySplits = 1
    } else {
      let wanted = (2 * pool.threadCount + items - 1) / max(items, 1)
      self.keySplits = max(1, min(wanted, keyTiles / 2, 64))
    }
  }

  /// D's numerator Σ p·dP and the row sums Σ p over a tile (keys as rows, query columns of pitch
  /// `leading`), in double, after rescaling both by the tile's `alpha` as the kernels' fp32 sums
  /// are; a p of 0 adds nothing whatever dP holds (stale scratch under a mask).
  static func accumulateExactly(
    p: UnsafePointer<Float>, dP: UnsafePointer<Float>, leading: Int, keys: Int, queries: Int,
    alpha: UnsafePointer<Float>, numerator: inout [Double], denominator: inout [Double]
  ) {
    for query in 0..<queries {
      numerator[query] *= Double(alpha[query])
      denominator[query] *= Double(alpha[query])
    }
    for key in 0..<keys {
      let row = key * leading
      for query in 0..<queries {
        let weight = p[row + query]
        if weight == 0 { continue }
        numerator[query] += Double(weight) * Double(dP[row + query])
        denominator[query] += Double(weight)
      }
    }
  }

  /// Floats of scratch per worker.
  private var scratchFloats: Int {
    let br = TileSizes.queries
    let bc = TileSizes.keys
    // Dropout's factors take one more score tile.
    let factors = arguments.options.activeDropout == nil ? 0 : bc * br
    let attention =
      shape.headDim * br + bc * paddedDim + bc * paddedDimV + bc * br + br * paddedDimV + 3 * br + factors
    guard case .rowStatistics = results else { return attention }
    return attention + shape.headDimV * br + bc * br + br
  }

  func run() {
    if keySplits > 1 {
      runSplit()
      return
    }
    // Blocks of one (batch, head) stay together so that both threads stream the same head's K
    // and V at the same time (shared in L3); within a head the heaviest go first, so a call
    // ends on the small blocks of its last head.
    let items = WorkOrder.heaviestFirst(
      count: shape.batch * shape.headsQ * queryBlocks, groupSize: queryBlocks
    ) { item in
      let block = item % queryBlocks
      let first = block * TileSizes.queries
      return mask.visibleKeys(forQueries: first..<min(shape.seqlenQ, first + TileSizes.queries)).count
    }
    let floats = scratchFloats
    items.withUnsafeBufferPointer { order in
      pool.run(tasks: order.count) { task, worker in
        let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
        process(item: order[task], scratch: scratch)
      }
    }
  }

  /// Split-KV: every (item, chunk) pair is a task that leaves its unnormalized output rows and
  /// its rows' max and sum in `partials`; a second pass merges each item's chunks exactly
  /// (`O = Σ e^(m_c − m) O_c / Σ e^(m_c − m) ℓ_c`) and runs the ordinary epilogue.
  private func runSplit() {
    let items = shape.batch * shape.headsQ * queryBlocks
    let rows = min(TileSizes.queries, shape.seqlenQ)
    let partial = PartialLayout(rows: rows, width: paddedDimV)
    let storage = UnsafeMutablePointer<Float>.allocate(capacity: items * keySplits * partial.floats)
    defer { storage.deallocate() }
    let floats = scratchFloats
    pool.run(tasks: items * keySplits) { task, worker in
      let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
      process(
        item: task / keySplits, scratch: scratch, split: task % keySplits,
        partial: storage + task * partial.floats, partialLayout: partial)
    }
    pool.run(tasks: items) { item, worker in
      let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
      merge(item: item, chunks: storage + item * keySplits * partial.floats, layout: partial, scratch: scratch)
    }
  }

  /// Where one (item, chunk) task leaves its result: `rows × width` output floats, then the rows'
  /// max, then their sum.
  struct PartialLayout {
    let rows: Int
    let width: Int
    var floats: Int { rows * (width + 2) }
    func output(_ base: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { base }
    func max(_ base: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { base + rows * width }
    func sum(_ base: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { base + rows * (width + 1) }
  }

  private func merge(
    item: Int, chunks: UnsafeMutablePointer<Float>, layout: PartialLayout, scratch: UnsafeMutablePointer<Float>
  ) {
    let block = item % queryBlocks
    let head = (item / queryBlocks) % shape.headsQ
    let batch = item / (queryBlocks * shape.headsQ)
    let firstQuery = block * TileSizes.queries
    let queryCount = min(TileSizes.queries, shape.seqlenQ - firstQuery)
    let oTile = scratch
    let rowMax = oTile + queryCount * paddedDimV
    let rowSum = rowMax + queryCount
    for row in 0..<queryCount {
      // A NaN max (a NaN input among the chunk's keys) makes the row NaN, as the unsplit pass does.
      var maximum = -Float.infinity
      for chunk in 0..<keySplits {
        let value = layout.max(chunks + chunk * layout.floats)[row]
        if value.isNaN || maximum.isNaN {
          maximum = .nan
        } else if value > maximum {
          maximum = value
        }
      }
      let target = oTile + row * paddedDimV
      target.update(repeating: 0, count: paddedDimV)
      var sum: Float = 0
      if maximum != -.infinity {
        for chunk in 0..<keySplits {
          let base = chunks + chunk * layout.floats
          let chunkMax = layout.max(base)[row]
          if chunkMax == -.infinity { continue }  // a chunk that saw no key adds nothing
          let factor = expf(chunkMax - maximum)
          sum += factor * layout.sum(base)[row]
          let source = layout.output(base) + row * layout.width
          for column in 0..<paddedDimV { target[column] += factor * source[column] }
        }
      }
      rowMax[row] = maximum
      rowSum[row] = sum
    }
    epilogue(batch: batch, head: head, firstQuery: firstQuery, queryCount: queryCount, oTile: oTile,
      rowMax: rowMax, rowSum: rowSum)
  }

  private func epilogue(
    batch: Int, head: Int, firstQuery: Int, queryCount: Int, oTile: UnsafeMutablePointer<Float>,
    rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>
  ) {
    let lse = arguments.lse
    var epilogue = fa_forward_epilogue(
      tile: oTile, leading: paddedDimV, count: queryCount, row_max: rowMax, row_sum: rowSum,
      out: HeadRows(arguments.out, batch: batch, head: head).descriptor, first_row: firstQuery,
      lse: lse.baseAddress.assumingMemoryBound(to: Float.self) + batch * lse.strides[0] + head * lse.strides[1],
      lse_stride: lse.strides[2])
    kernels.forwardEpilogue(&epilogue)
  }

  private func process(
    item: Int, scratch: UnsafeMutablePointer<Float>, split: Int = 0, partial: UnsafeMutablePointer<Float>? = nil,
    partialLayout: PartialLayout? = nil
  ) {
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
    // Row statistics only: dOᵀ, dPᵀ and the running numerator of D.
    let dOT = alpha + br
    let dPTile = dOT + shape.headDimV * br
    let dSum = dPTile + bc * br
    // Dropout's factors: after everything else (the row statistics' tiles included).
    let factorTile = alpha + br + (statistics(in: results) ? shape.headDimV * br + bc * br + br : 0)
    let features = ScoreFeatures(options: arguments.options, shape: shape, batch: batch, head: head)

    let qRows = HeadRows(arguments.q, batch: batch, head: head)
    let kRows = HeadRows(arguments.k, batch: batch, head: kvHead)
    let vRows = HeadRows(arguments.v, batch: batch, head: kvHead)
    qRows.packTransposed(
      rows: firstQuery, count: queryCount, paddedRows: paddedQueries, into: qT, leading: br, kernels: kernels)
    rowMax.update(repeating: -.infinity, count: br)
    rowSum.update(repeating: 0, count: br)
    oTile.update(repeating: 0, count: br * paddedDimV)

    let valuePanels = vRows.rowsShareOneL1Set
    var statistics: RowStatistics?
    if case let .rowStatistics(rows) = results {
      statistics = rows
      HeadRows(rows.dOut, batch: batch, head: head).packTransposed(
        rows: firstQuery, count: queryCount, paddedRows: paddedQueries, into: dOT, leading: br, kernels: kernels)
      dSum.update(repeating: 0, count: br)
    }
    // D's numerator and denominator in double (not under dropout, whose D divides the dropped
    // numerator by the undropped sum: the fp32 sums serve there). At large scores a row's D sits
    // within a few units of its max's dP, and dS = P (dP − D) keeps only what D's rounding
    // leaves: fp32 sums put 2-4 % of such a dS in dQ and dK (docs/perf-notes/large-score-forward.md).
    let exactD = statistics != nil && arguments.options.activeDropout == nil
    var numerator = [Double](repeating: 0, count: exactD ? br : 0)
    var denominator = [Double](repeating: 0, count: exactD ? br : 0)
    let queries = firstQuery..<(firstQuery + queryCount)
    let keys = chunk(split, of: mask.visibleKeys(forQueries: queries))
    let softcap = arguments.options.softcap
    // Scores leave the product scaled, so the softmax subtracts the running max exactly (issue
    // #16: a fused `s · unit − max · unit` rounds the max's product and, at large scores, can
    // leave no term near 1); under softcap the tanh takes the raw product.
    let productScale = softcap > 0 ? 1 : arguments.scale
    var step = fa_forward_step(
      scores: sTile, leading: br, key_count: 0, query_count: queryCount, padded_queries: paddedQueries,
      softcap: softcap > 0, softcap_inner: softcap > 0 ? arguments.scale / softcap : 0,
      softcap_outer: softcap, mask: TileBand.c(nil), row_max: rowMax, row_sum: rowSum, alpha: alpha,
      out: oTile, out_leading: paddedDimV, out_width: statistics == nil ? paddedDimV : 0,
      alibi_slope: features.slope, alibi_diagonal: 0)
    var firstKey = keys.lowerBound
    while firstKey < keys.upperBound {
      let keyCount = min(bc, keys.upperBound - firstKey)
      let keyTile = kRows.tile(
        rows: firstKey, count: keyCount, paddedRows: roundUp(keyCount, TileSizes.rowBlock), buffer: kTile,
        leading: paddedDim, kernels: kernels)
      // V in column panels when its rows, read in place, would share one L1 set; else as
      // rows (in place or packed).
      let valueTile =
        valuePanels || statistics != nil
        ? nil
        : vRows.tile(
          rows: firstKey, count: keyCount, paddedRows: keyCount, buffer: vTile, leading: paddedDimV, kernels: kernels)
      let tileKeys = firstKey..<(firstKey + keyCount)
      let masked = !mask.isFullyVisible(queries: queries, keys: tileKeys)
      let queriesPerKey = masked ? mask.queriesPerKey(firstQuery: firstQuery, firstKey: firstKey) : nil
      // Sᵀ = K · Qᵀ: keys are rows, the vector lanes run over queries. On a tile the mask cuts,
      // the blocks without a visible pair are skipped (and masked by the softmax step).
      kernels.multiply(
        rows: keyCount, columns: paddedQueries, depth: shape.headDim, a: keyTile.rows, aRow: keyTile.leading,
        aK: 1, b: qT, bK: br, c: sTile, cRow: br, accumulate: false, scale: productScale,
        columnBand: queriesPerKey)
      // The next tile's K and V rows, asked for now so that they arrive during this tile's
      // softmax and P·V. Rows of one head are `heads · d` floats apart (2–4 KiB here), which the
      // hardware prefetchers do not follow across pages, so at large N every tile would
      // otherwise wait for L3 or DRAM (docs/perf-notes/cpu.md, item 8).
      let nextKey = firstKey + keyCount
      let nextCount = min(bc, keys.upperBound - nextKey)
      kRows.prefetch(rows: nextKey, count: nextCount)
      if statistics == nil { vRows.prefetch(rows: nextKey, count: nextCount) }
      step.key_count = keyCount
      step.mask = TileBand.c(queriesPerKey)
      step.alibi_diagonal = ScoreFeatures.diagonal(shape: shape, firstQuery: firstQuery, firstKey: firstKey)
      kernels.forwardStep(&step)
      // Dropout on P after the sum (the LSE stays the undropped softmax's): P·V and D's
      // numerator see the dropped, rescaled entries.
      if features.dropoutFactors(
        kernels: kernels, into: factorTile, leading: br, firstQuery: firstQuery, firstKey: firstKey,
        rows: keyCount, columns: paddedQueries, keysAreRows: true)
      {
        kernels.table.pointee.multiply_elementwise(sTile, factorTile, br, keyCount, paddedQueries)
      }
      if statistics != nil {
        // dPᵀ = V · dOᵀ (each element summed as the backward's dO · Vᵀ sums it), then D's
        // numerator, rescaled like the sum.
        let valueRows = vRows.tile(
          rows: firstKey, count: keyCount, paddedRows: roundUp(keyCount, TileSizes.rowBlock), buffer: vTile,
          leading: paddedDimV, kernels: kernels)
        kernels.multiply(
          rows: keyCount, columns: paddedQueries, depth: shape.headDimV, a: valueRows.rows, aRow: valueRows.leading,
          aK: 1, b: dOT, bK: br, c: dPTile, cRow: br, accumulate: false, columnBand: queriesPerKey)
        if exactD {
          Self.accumulateExactly(
            p: sTile, dP: dPTile, leading: br, keys: keyCount, queries: queryCount, alpha: alpha,
            numerator: &numerator, denominator: &denominator)
        } else {
          kernels.table.pointee.weighted_column_sums(sTile, dPTile, br, keyCount, paddedQueries, alpha, dSum)
        }
        firstKey += keyCount
        continue
      }
      // O += P · V, reading P from the transposed tile; each query group sums only the keys it
      // sees.
      let keysSeen = masked ? mask.keysPerQuery(firstQuery: firstQuery, firstKey: firstKey) : nil
      if let valueTile {
        kernels.multiply(
          rows: queryCount, columns: paddedDimV, depth: keyCount, a: sTile, aRow: 1, aK: br,
          b: valueTile.rows, bK: valueTile.leading, c: oTile, cRow: paddedDimV, accumulate: true,
          depthBand: keysSeen)
      } else {
        // Packed here, after the softmax, so that the prefetched rows have had the most time.
        vRows.packPanels(rows: firstKey, count: keyCount, into: vTile, rowCapacity: bc, kernels: kernels)
        kernels.multiply(
          rows: queryCount, columns: paddedDimV, depth: keyCount, a: sTile, aRow: 1, aK: br,
          b: vTile, bK: 0, bPanels: bc, c: oTile, cRow: paddedDimV, accumulate: true, depthBand: keysSeen)
      }
      firstKey += keyCount
    }
    if let statistics {
      let first = (batch * shape.headsQ + head) * shape.seqlenQ + firstQuery
      (statistics.max + first).update(from: rowMax, count: queryCount)
      (statistics.sum + first).update(from: rowSum, count: queryCount)
      for row in 0..<queryCount {
        if exactD {
          // D as an fp32 pair: its high part and what rounding to it left.
          let d = denominator[row] > 0 ? numerator[row] / denominator[row] : numerator[row]
          let high = Float(d)
          statistics.d[first + row] = high
          statistics.dLow[first + row] = high.isFinite ? Float(d - Double(high)) : 0
        } else {
          statistics.d[first + row] = rowSum[row] > 0 ? dSum[row] / rowSum[row] : dSum[row]
          statistics.dLow[first + row] = 0
        }
      }
      return
    }
    if let partial, let layout = partialLayout {
      for row in 0..<queryCount {
        (layout.output(partial) + row * layout.width).update(from: oTile + row * paddedDimV, count: paddedDimV)
      }
      layout.max(partial).update(from: rowMax, count: queryCount)
      layout.sum(partial).update(from: rowSum, count: queryCount)
      return
    }
    epilogue(
      batch: batch, head: head, firstQuery: firstQuery, queryCount: queryCount, oTile: oTile, rowMax: rowMax,
      rowSum: rowSum)
  }

  private func statistics(in results: Results) -> Bool {
    if case .rowStatistics = results { return true }
    return false
  }

  /// Chunk `split` of `keySplits` of a visible key range, cut at key-tile boundaries.
  private func chunk(_ split: Int, of keys: Range<Int>) -> Range<Int> {
    if keySplits == 1 { return keys }
    let tiles = (keys.count + TileSizes.keys - 1) / TileSizes.keys
    let tilesPerChunk = (tiles + keySplits - 1) / keySplits
    let lower = min(keys.upperBound, keys.lowerBound + split * tilesPerChunk * TileSizes.keys)
    let upper = min(keys.upperBound, lower + tilesPerChunk * TileSizes.keys)
    return lower..<upper
  }
}
