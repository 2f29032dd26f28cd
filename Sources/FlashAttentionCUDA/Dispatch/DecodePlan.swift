import FlashAttentionCore

/// What a KV-cache call runs (`Kernels/decode/`): the decode kernel's key, how many blocks of
/// packed query rows and key splits its grid has, and the merge of the splits when there are
/// several. Chosen on the host from sizes alone (the sequence lengths may live on the device),
/// so it is testable without a GPU.
package struct DecodePlan: Sendable, Hashable {
  package var key: DecodeKey
  /// Blocks of `key.tile.rows` packed rows (query tokens × the query heads of one kv head).
  package var rowBlocks: Int
  /// Key splits per (sequence, kv head, row block); 1 writes O and the LSE directly.
  package var splits: Int

  /// The counters a fused merge of this plan takes (`DecodeSplitCounters`): one per (row block,
  /// kv head, sequence) of the grid.
  package func mergeGroups(_ shape: AttentionShape) -> Int {
    rowBlocks * shape.headsKV * shape.batch
  }

  /// The merge kernel, with more than one split.
  package var combine: DecodeCombineKey? {
    splits > 1 ? DecodeCombineKey(headDimV: key.headDimV, dtype: key.dtype) : nil
  }

  /// The plan of a call.
  /// - Parameters:
  ///   - shape: batch, query tokens, heads and head dims (`seqlenK` is the cache's capacity).
  ///   - maxKeys: the most keys a sequence sees (the capacity when the lengths are on the device).
  ///   - requestedSplits: the caller's `num_splits`; 0 picks from the GPU's size and `maxKeys`.
  ///   - multiprocessors: the device's SM count.
  ///   - loader: how the kernel loads K and V; one that does not apply to `arch` and the head
  ///     dims falls back to `.cpAsync` (the caller checks the cache's alignment:
  ///     `DecodeLoader.effective`).
  package static func make(
    shape: AttentionShape, dtype: DType, options: AttentionOptions, paged: Bool, maxKeys: Int,
    requestedSplits: Int, arch: String, multiprocessors: Int, tuning: DecodeTuning? = nil,
    loader: DecodeLoader = .cpAsync
  ) -> DecodePlan {
    let rows = shape.seqlenQ * shape.groupSize
    let loader = loader.applies(arch: arch, headDim: shape.headDim, headDimV: shape.headDimV) ? loader : .cpAsync
    let tile = TileTables.decodeTile(
      headDim: shape.headDim, headDimV: shape.headDimV, rows: rows, arch: arch, override: tuning, loader: loader)
    let key = DecodeKey(
      headDim: shape.headDim, headDimV: shape.headDimV, dtype: dtype,
      masked: options.causal || options.window != nil, softcap: options.softcap > 0, paged: paged, tile: tile,
      arch: arch, loader: loader)
    let rowBlocks = max(1, (rows + tile.rows - 1) / tile.rows)
    let splits: Int
    if requestedSplits > 0 {
      splits = min(requestedSplits, TileTables.maxDecodeSplits)
    } else {
      let perSM = TileTables.decodeCTAsPerMultiprocessor(sharedMemoryBytes: key.sharedMemoryBytes, arch: arch)
      splits = TileTables.decodeSplits(
        blocks: shape.batch * shape.headsKV * rowBlocks, keys: maxKeys, warps: tile.warps,
        slots: max(1, multiprocessors) * perSM)
    }
    return DecodePlan(key: key, rowBlocks: rowBlocks, splits: splits)
  }
}
