/// How the decode kernel's key splits are merged (`--decode-combine`). Both run the same merge
/// arithmetic (`Kernels/decode/merge.cuh`), so they give the same bits.
package enum DecodeCombine: String, Hashable, Sendable, CaseIterable {
  /// A second launch, `flash_decode_combine`, after the decode kernel.
  case separate
  /// Inside the decode kernel: the last split CTA of each row block to finish (a ticket from a
  /// per-stream counter, `DecodeSplitCounters`) merges the block's rows. Saves the second launch
  /// and its ramp. Falls back to `separate` on a stream being captured into a graph and on
  /// grids of more row blocks than the counters hold.
  case fused
}
