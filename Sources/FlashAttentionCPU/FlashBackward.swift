import FlashAttentionCore
import Synchronization
import _CPUFeatureShims
import _FlashAttentionCPUKernels

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One backward call (FlashAttention-2's algorithm): D = rowsum(dO ∘ O) first, then work items
/// of (batch, kv head, key block). Each item keeps its dK and dV tile for the whole pass over the
/// query blocks that see it (all query heads of the GQA group), so dK and dV need no
/// synchronization; P is recomputed from the LSE.
///
/// Deterministic, whatever the thread count or scheduling: the dQ contributions of the key
/// blocks to one query block are added in key-block order. An item waits for its turn at each
/// query block (`DQTurns`); items are handed out key block by key block across all (batch, kv
/// head) pairs, so the item before it in that order is another pair's or long finished, and
/// waiting is rare once there are at least as many pairs as threads.
///
/// P is `e^(s − LSE)` with the forward pass's scores bit for bit, which is as exact as the
/// float32 LSE: half a unit in its last place, relative to P. And D = rowsum(dO ∘ O) equals
/// `Σ_j P_j · dP_j` only up to O's rounding and its own; dQ and dK carry D's error times the
/// scale. Where some |LSE| exceeds `exactStatisticsThreshold` (scores far beyond ordinary
/// attention's) both pass a standard attention's error, so a first pass recomputes each row's
/// max, sum and `D = Σ_j P_j · dP_j` from the same products as the main pass (a forward pass
/// with dO in place of V, about two fifths of the backward's work), and P becomes
/// `e^((s − max) − ln(sum))`: a one-hot row then gives P = 1 and dS = 0 exactly.
///
/// The score tiles are `S = Q · Kᵀ` with queries as rows: Kᵀ and Vᵀ are packed once per item,
/// and Q and dO serve as they are (rows) in every product, so no transpose happens per
/// (key block, query block) pair.
struct FlashBackward {
  let arguments: BackwardArguments
  let pool: WorkerPool
  let kernels: CPUKernels
  let shape: AttentionShape
  let mask: AttentionMask
  let paddedDim: Int
  let paddedDimV: Int
  let queryBlocks: Int
  let keyBlocks: Int

  init(_ arguments: BackwardArguments, pool: WorkerPool, kernels: CPUKernels) {
    self.arguments = arguments
    self.pool = pool
    self.kernels = kernels
    shape = arguments.shape
    mask = arguments.mask.clampedForKernels
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
    // Dropout's factors take one more score tile.
    let factors = arguments.options.activeDropout == nil ? 0 : br * bc
    return keyTiles + queryTiles + 3 * br * bc + 4 * br + factors
  }

  /// |LSE| above which P and D come from recomputed row statistics: there half a unit in the
  /// last place of the LSE (2^-19 relative) passes the few units of 2^-24 of a standard
  /// attention's P. Ordinary attention stays far below it (|LSE| is about ln(seqlen_k) plus the
  /// largest score).
  static let exactStatisticsThreshold: Float = 64

  func run() throws(FlashAttentionError) {
    let rowCount = shape.batch * shape.headsQ * shape.seqlenQ
    let rowD = UnsafeMutablePointer<Float>.allocate(capacity: max(rowCount, 1))
    defer { rowD.deallocate() }
    // D's low part: 0 but where the large-score statistics keep D as an fp32 pair.
    let rowDLow = UnsafeMutablePointer<Float>.allocate(capacity: max(rowCount, 1))
    rowDLow.initialize(repeating: 0, count: max(rowCount, 1))
    defer { rowDLow.deallocate() }
    let statistics = try exactStatistics(rows: rowCount, d: rowD, dLow: rowDLow)
    defer {
      statistics?.max.deallocate()
      statistics?.logSum.deallocate()
    }
    let accumulator = try DQAccumulator(arguments, kernels: kernels)
    defer { accumulator.release() }
    let turns = DQTurns(count: shape.batch * shape.headsQ * queryBlocks)
    defer { turns.release() }

    // D = rowsum(dO ∘ O) (unless the row statistics gave it) and a zeroed dQ accumulator, per
    // (batch, query head).
    pool.run(tasks: shape.batch * shape.headsQ) { task, _ in
      let batch = task / shape.headsQ
      let head = task % shape.headsQ
      if statistics == nil {
        var out = HeadRows(arguments.out, batch: batch, head: head).descriptor
        var dOut = HeadRows(arguments.dOut, batch: batch, head: head).descriptor
        kernels.table.pointee.row_dot(&out, &dOut, 0, shape.seqlenQ, rowD + task * shape.seqlenQ)
      }
      accumulator.zero(batch: batch, head: head)
    }

    // Key block by key block: item `i` is key block `i / pairs` of (batch, kv head) `i % pairs`.
    // For causal masks this is also heaviest first (the first key blocks see the most queries).
    let pairs = shape.batch * shape.headsKV
    let floats = scratchFloats
    pool.run(tasks: pairs * keyBlocks) { task, worker in
      let scratch = pool.scratch(worker: worker, bytes: floats * 4).assumingMemoryBound(to: Float.self)
      process(
        pair: task % pairs, keyBlock: task / pairs, scratch: scratch, rowD: rowD, rowDLow: rowDLow,
        statistics: statistics,
        accumulator: accumulator, turns: turns)
    }
    if accumulator.needsConversion {
      pool.run(tasks: shape.batch * shape.headsQ) { task, _ in
        accumulator.convert(batch: task / shape.headsQ, head: task % shape.headsQ)
      }
    }
  }

  /// Each row's max and ln(sum), recomputed, and D into `d`, when some |LSE| passes the
  /// threshold; else nil.
  private func exactStatistics(
    rows: Int, d: UnsafeMutablePointer<Float>, dLow: UnsafeMutablePointer<Float>
  ) throws(FlashAttentionError) -> (max: UnsafeMutablePointer<Float>, logSum: UnsafeMutablePointer<Float>)? {
    let lse = arguments.lse
    let values = lse.baseAddress.assumingMemoryBound(to: Float.self)
    var large = false
    for batch in 0..<shape.batch where !large {
      for head in 0..<shape.headsQ where !large {
        let base = batch * lse.strides[0] + head * lse.strides[1]
        for row in 0..<shape.seqlenQ {
          let value = values[base + row * lse.strides[2]]
          if value.isFinite && abs(value) > FlashBackward.exactStatisticsThreshold {
            large = true
            break
          }
        }
      }
    }
    guard large else { return nil }
    let max = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(rows, 1))
    let logSum = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(rows, 1))
    let forward = try ForwardArguments(
      q: arguments.q, k: arguments.k, v: arguments.v, out: arguments.out, lse: arguments.lse,
      options: arguments.options)
    let statistics = FlashForward.RowStatistics(max: max, sum: logSum, d: d, dLow: dLow, dOut: arguments.dOut)
    FlashForward(forward, pool: pool, kernels: kernels, results: .rowStatistics(statistics)).run()
    for row in 0..<rows {
      let sum = logSum[row]
      // A row that saw no key gives P = 0: e^(s − inf) = 0.
      if sum == 0 { max[row] = .infinity }
      logSum[row] = logf(sum)
    }
    keepGivenStatistics(max: max, logSum: logSum, d: d, dLow: dLow)
    return (max, logSum)
  }

  /// Rows whose given LSE is not this call's own (a block of a longer softmax: ring attention,
  /// split keys, a caller's merged LSE) keep the given LSE and D = rowsum(dO ∘ O), as the
  /// backward's contract says. The recomputed statistics replace the given ones only where they
  /// are the same softmax to within the given ones' own rounding, on both counts:
  /// - the LSE within a few units in its last place. That alone is not enough: the float32 LSE
  ///   cannot show other keys holding less than about 2^-19 of the row's mass, and in a
  ///   near-one-hot row such mass is the whole of dS (measured: a ring block taking its own
  ///   statistics on that evidence alone gave dQ off by 0.7, relative);
  /// - D within O's rounding: the other keys' mass r moves D by r (D_other − D_own), which
  ///   `dRoundoff` bounds where r is too small to matter.
  private func keepGivenStatistics(
    max: UnsafeMutablePointer<Float>, logSum: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>,
    dLow: UnsafeMutablePointer<Float>
  ) {
    let lse = arguments.lse
    let values = lse.baseAddress.assumingMemoryBound(to: Float.self)
    pool.run(tasks: shape.batch * shape.headsQ) { task, _ in
      let batch = task / shape.headsQ
      let head = task % shape.headsQ
      let base = batch * lse.strides[0] + head * lse.strides[1]
      var out = HeadRows(arguments.out, batch: batch, head: head).descriptor
      var dOut = HeadRows(arguments.dOut, batch: batch, head: head).descriptor
      for query in 0..<shape.seqlenQ {
        let row = task * shape.seqlenQ + query
        let given = values[base + query * lse.strides[2]]
        if !given.isFinite { continue }
        let recomputed = max[row] + logSum[row]
        if recomputed.isNaN { continue }
        var fromO: Float = 0
        kernels.table.pointee.row_dot(&out, &dOut, query, 1, &fromO)
        let sameLSE = given == recomputed || abs(given - recomputed) <= abs(given) * 0x1p-20
        if sameLSE && abs((d[row] + dLow[row]) - fromO) <= dRoundoff(batch: batch, head: head, query: query) {
          continue
        }
        max[row] = given
        logSum[row] = 0
        d[row] = fromO
        dLow[row] = 0
      }
    }
  }

  /// How far rowsum(dO ∘ O) may be from the row's exact D through O's rounding alone: O's
  /// storage (its dtype's unit roundoff, twice for the forward's own arithmetic) and the
  /// float32 sums (2^-20: a few units over the head dims), each on Σ |dO_i O_i|.
  private func dRoundoff(batch: Int, head: Int, query: Int) -> Float {
    let out = arguments.out
    let dOut = arguments.dOut
    let outRow = batch * out.strides[0] + query * out.strides[1] + head * out.strides[2]
    let dOutRow = batch * dOut.strides[0] + query * dOut.strides[1] + head * dOut.strides[2]
    var magnitude: Float = 0
    for i in 0..<shape.headDimV {
      magnitude += abs(out.loadFloat(atElementOffset: outRow + i * out.strides[3])
        * dOut.loadFloat(atElementOffset: dOutRow + i * dOut.strides[3]))
    }
    return (2 * Float(out.dtype.unitRoundoff) + 0x1p-20) * magnitude
  }

  /// Queries that see at least one key of key block `block`: the inverse of the mask's band.
  private func queryRange(forKeyBlock block: Int) -> Range<Int> {
    let firstKey = block * TileSizes.keys
    let lastKey = min(shape.seqlenK, firstKey + TileSizes.keys) - 1
    let lower = mask.right.map { max(0, firstKey - mask.offset - $0) } ?? 0
    let upper = mask.left.map { min(shape.seqlenQ, lastKey - mask.offset + $0 + 1) } ?? shape.seqlenQ
    return lower < upper ? lower..<upper : 0..<0
  }

  /// The first key block whose dQ contribution query block `block` receives (the start of its
  /// turns): where the keys its queries see begin.
  private func firstKeyBlock(forQueryBlock block: Int) -> Int {
    let first = block * TileSizes.queries
    let keys = mask.visibleKeys(forQueries: first..<min(shape.seqlenQ, first + TileSizes.queries))
    return keys.lowerBound / TileSizes.keys
  }

  private func process(
    pair: Int, keyBlock: Int, scratch: UnsafeMutablePointer<Float>, rowD: UnsafePointer<Float>,
    rowDLow: UnsafePointer<Float>,
    statistics: (max: UnsafeMutablePointer<Float>, logSum: UnsafeMutablePointer<Float>)?,
    accumulator: DQAccumulator, turns: DQTurns
  ) {
    // ALiBi: P spans every magnitude down to 2^-127, and far from the diagonal whole tiles of
    // P and dS are tiny, so the dV, dK and dQ products make subnormal results that x86 handles
    // with microcode assists (measured: the ALiBi backward took 1.4-1.8x plain's). Flushed to
    // zero for this task only (what they would add is below 2^-126); plain attention keeps the
    // thread's modes.
    let floatModes = arguments.options.alibiSlopes == nil ? nil : fa_enter_flush_to_zero()
    defer { if let floatModes { fa_restore_float_modes(floatModes) } }
    let br = TileSizes.queries
    let bc = TileSizes.keys
    let kvHead = pair % shape.headsKV
    let batch = pair / shape.headsKV
    let firstKey = keyBlock * bc
    let keyCount = min(bc, shape.seqlenK - firstKey)
    // Key columns of the score tiles: every column a product over keys reads (the dK/dV
    // products run over 6-row key blocks) and a multiple of 16; at most `bc`.
    let paddedKeys = roundUp(roundUp(keyCount, TileSizes.rowBlock), 16)

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
    let lseRow = tanhTile + br * bc
    let dRow = lseRow + br
    let logSumRow = dRow + br
    let dLowRow = logSumRow + br
    let factorTile = dLowRow + br

    // Kᵀ and Vᵀ once per key block (zero columns past the keys): the B operands of S = Q·Kᵀ
    // and dP = dO·Vᵀ. K as rows is dQ = dS·K's B operand.
    let kRows = HeadRows(arguments.k, batch: batch, head: kvHead)
    let vRows = HeadRows(arguments.v, batch: batch, head: kvHead)
    kRows.packTransposed(rows: firstKey, count: keyCount, paddedRows: bc, into: kT, leading: bc, kernels: kernels)
    vRows.packTransposed(rows: firstKey, count: keyCount, paddedRows: bc, into: vT, leading: bc, kernels: kernels)
    let keyTile = kRows.streamedTile(rows: firstKey, count: keyCount, buffer: kTile, leading: pitch, kernels: kernels)
    dKTile.update(repeating: 0, count: bc * paddedDim)
    dVTile.update(repeating: 0, count: bc * paddedDimV)

    let softcap = arguments.options.softcap
    let scale = arguments.scale
    // The forward pass's scores, bit for bit: the same products (each element summed in the same
    // order) with the same scale; under softcap the tanh takes the raw product.
    let productScale = softcap > 0 ? 1 : scale
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
        let rowDLowHead = rowDLow + (batch * shape.headsQ + head) * shape.seqlenQ
        let features = ScoreFeatures(options: arguments.options, shape: shape, batch: batch, head: head)
        for block in firstBlock...lastBlock {
          let firstQuery = block * br
          let queryCount = min(br, shape.seqlenQ - firstQuery)
          // Rows the products over queries write: whole 6-row blocks, all finite.
          let paddedQueries = roundUp(queryCount, TileSizes.rowBlock)
          let queryTile = qRows.streamedTile(
            rows: firstQuery, count: queryCount, paddedRows: paddedQueries, buffer: qTile, leading: pitch,
            kernels: kernels)
          let gradientTile = dORows.streamedTile(
            rows: firstQuery, count: queryCount, paddedRows: paddedQueries, buffer: doTile, leading: pitchV,
            kernels: kernels)
          let statisticsBase = (batch * shape.headsQ + head) * shape.seqlenQ + firstQuery
          for row in 0..<br {
            if row < queryCount {
              if let statistics {
                lseRow[row] = statistics.max[statisticsBase + row]
                logSumRow[row] = statistics.logSum[statisticsBase + row]
              } else {
                let value = lseHead[(firstQuery + row) * lse.strides[2]]
                // A row that saw no key (LSE -inf) has P = 0 everywhere: e^(s − inf) = 0.
                lseRow[row] = value == -.infinity ? .infinity : value
              }
              dRow[row] = rowDHead[firstQuery + row]
              dLowRow[row] = rowDLowHead[firstQuery + row]
            } else {
              lseRow[row] = .infinity
              logSumRow[row] = 0
              dRow[row] = 0
              dLowRow[row] = 0
            }
          }

          let blockQueries = firstQuery..<(firstQuery + queryCount)
          let masked = !mask.isFullyVisible(queries: blockQueries, keys: keys)
          // On a tile the mask cuts, only the blocks with visible pairs are computed: the rest
          // of S is masked to -inf, and P = 0 there zeroes dS whatever dP held.
          let queriesPerKey = masked ? mask.queriesPerKey(firstQuery: firstQuery, firstKey: firstKey) : nil
          let keysPerQuery = masked ? mask.keysPerQuery(firstQuery: firstQuery, firstKey: firstKey) : nil

          // S = scale · Q · Kᵀ, then P from the LSE.
          kernels.multiply(
            rows: queryCount, columns: paddedKeys, depth: shape.headDim, a: queryTile.rows,
            aRow: queryTile.leading, aK: 1, b: kT, bK: bc, c: pTile, cRow: bc, accumulate: false,
            scale: productScale, columnBand: keysPerQuery)
          // The next query block's rows, asked for now so that they arrive during this pair's
          // element-wise steps and products (rows of one head are `heads · d` floats apart,
          // which the hardware prefetchers do not follow across pages).
          if block < lastBlock {
            qRows.prefetch(rows: firstQuery + br, count: br)
            dORows.prefetch(rows: firstQuery + br, count: br)
          }
          var probabilities = fa_backward_probabilities(
            scores: pTile, leading: bc, rows: paddedQueries, key_count: keyCount, padded_keys: paddedKeys,
            softcap: softcap > 0, softcap_inner: softcap > 0 ? scale / softcap : 0, softcap_outer: softcap,
            tanh_out: softcap > 0 ? tanhTile : nil, mask: TileBand.c(keysPerQuery), lse: lseRow,
            log_sum: statistics == nil ? nil : logSumRow, alibi_slope: features.slope,
            alibi_diagonal: ScoreFeatures.diagonal(shape: shape, firstQuery: firstQuery, firstKey: firstKey))
          kernels.backwardProbabilities(&probabilities)
          // dP = dO · Vᵀ, then dS.
          kernels.multiply(
            rows: queryCount, columns: paddedKeys, depth: shape.headDimV, a: gradientTile.rows,
            aRow: gradientTile.leading, aK: 1, b: vT, bK: bc, c: dsTile, cRow: bc, accumulate: false,
            columnBand: keysPerQuery)
          // Dropout: the forward's factors z, regenerated: dP ∘ z into dS, and P ∘ z for dV.
          let dropped = features.dropoutFactors(
            kernels: kernels, into: factorTile, leading: bc, firstQuery: firstQuery, firstKey: firstKey,
            rows: paddedQueries, columns: paddedKeys, keysAreRows: false)
          if dropped { kernels.table.pointee.multiply_elementwise(dsTile, factorTile, bc, paddedQueries, paddedKeys) }
          var gradient = fa_score_gradient(
            probabilities: pTile, gradient: dsTile, tanh: softcap > 0 ? tanhTile : nil, leading: bc,
            rows: paddedQueries, columns: paddedKeys, row_d: dRow, scale: scale, row_d_low: dLowRow)
          kernels.scoreGradient(&gradient)
          if dropped { kernels.table.pointee.multiply_elementwise(pTile, factorTile, bc, paddedQueries, paddedKeys) }
          // dV += Pᵀ · dO and dK += dSᵀ · Q (keys are rows, read down the tiles' columns).
          kernels.multiply(
            rows: keyCount, columns: paddedDimV, depth: queryCount, a: pTile, aRow: 1, aK: bc,
            b: gradientTile.rows, bK: gradientTile.leading, c: dVTile, cRow: paddedDimV, accumulate: true,
            depthBand: queriesPerKey)
          kernels.multiply(
            rows: keyCount, columns: paddedDim, depth: queryCount, a: dsTile, aRow: 1, aK: bc,
            b: queryTile.rows, bK: queryTile.leading, c: dKTile, cRow: paddedDim, accumulate: true,
            depthBand: queriesPerKey)
          // dQ += dS · K, into a private tile first, then added at this key block's turn.
          kernels.multiply(
            rows: queryCount, columns: paddedDim, depth: keyCount, a: dsTile, aRow: bc, aK: 1,
            b: keyTile.rows, bK: keyTile.leading, c: dQTile, cRow: paddedDim, accumulate: false,
            depthBand: keysPerQuery)
          let slot = (batch * shape.headsQ + head) * queryBlocks + block
          turns.wait(slot: slot, turn: keyBlock - firstKeyBlock(forQueryBlock: block))
          accumulator.add(
            batch: batch, head: head, firstQuery: firstQuery, count: queryCount, tile: dQTile, leading: paddedDim)
          turns.pass(slot: slot)
        }
      }
    }
    let dKRows = HeadRows(arguments.dK, batch: batch, head: kvHead)
    let dVRows = HeadRows(arguments.dV, batch: batch, head: kvHead)
    dKRows.store(rows: firstKey, count: keyCount, from: dKTile, leading: paddedDim, kernels: kernels)
    dVRows.store(rows: firstKey, count: keyCount, from: dVTile, leading: paddedDimV, kernels: kernels)
  }
}

/// The order of dQ contributions: one counter per (batch, query head, query block) holding how
/// many key blocks have added theirs. The key block whose turn is `n` there waits until the
/// counter reads `n`, adds, and passes the turn on; the adds to one block are then serialized
/// and always in the same order.
struct DQTurns: @unchecked Sendable {
  private let counters: UnsafeMutablePointer<Atomic<Int>>
  private let count: Int

  init(count: Int) {
    self.count = max(count, 1)
    counters = .allocate(capacity: self.count)
    for index in 0..<self.count { (counters + index).initialize(to: Atomic(0)) }
  }

  func release() {
    counters.deinitialize(count: count)
    counters.deallocate()
  }

  /// Returns once `slot` has seen `turn` contributions. Spins briefly, then yields the core:
  /// the contribution awaited is being computed by another worker, which may need this core.
  func wait(slot: Int, turn: Int) {
    var spins = 0
    while counters[slot].load(ordering: .acquiring) != turn {
      spins += 1
      if spins < 2_000 { fa_spin_pause() } else { sched_yield() }
    }
  }

  func pass(slot: Int) {
    counters[slot].add(1, ordering: .releasing)
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
  let kernels: CPUKernels

  init(_ arguments: BackwardArguments, kernels: CPUKernels) throws(FlashAttentionError) {
    let dQ = arguments.dQ
    let shape = arguments.shape
    target = dQ
    width = shape.headDim
    self.kernels = kernels
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
    kernels.table.pointee.add_rows(
      row(batch: batch, head: head, query: firstQuery), strides.row, tile, leading, count, width)
  }

  /// Rounds the fp32 sums of one (batch, head) into dQ's dtype.
  func convert(batch: Int, head: Int) {
    HeadRows(target, batch: batch, head: head).store(
      rows: 0, count: target.shape[1], from: row(batch: batch, head: head, query: 0), leading: strides.row,
      kernels: kernels)
  }
}
