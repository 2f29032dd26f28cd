import FlashAttentionCore

/// How the decode kernel (`Kernels/decode/decode.cu`) moves K and V rows into shared memory.
/// A tuning choice (`--decode-loader`): all put the same bytes in shared memory and run the
/// same math.
package enum DecodeLoader: String, Hashable, Sendable, CaseIterable {
  /// 16-byte `cp.async`, two lanes per key row (every architecture; the default above
  /// d = 128): one copy instruction asks for a 32-byte sector of each of 16 rows.
  case cpAsync = "cpasync"
  /// 16-byte `cp.async` with consecutive lanes on consecutive chunks of a row (every
  /// architecture; the default up to d = 128): one copy instruction asks for whole 128-byte
  /// lines (two rows at d = 128). H100, 2026-12-06: 97-101 % of the copy bandwidth from batch 4
  /// at 32k keys, where `cpAsync` reached 69-77 % (docs/perf-notes/cuda-decode.md).
  case cpAsyncLines = "cpasync-lines"
  /// Hopper bulk copies (`cp.async.bulk`), one per K or V row of a key, completing on an
  /// mbarrier per stage (sm_90 only; elsewhere the call falls back to `cpAsync`).
  case bulk

  /// Whether this loader can run on `arch` at all.
  package func runs(on arch: String) -> Bool {
    switch self {
    case .cpAsync, .cpAsyncLines: return true
    case .bulk: return arch.hasPrefix("sm_90")
    }
  }

  /// Whether a decode kernel of head dims (d, d_v) on `arch` takes this loader: the
  /// line-coalesced one up to d = d_v = 128 (above, its shuffled row offsets spill at d = 256).
  package func applies(arch: String, headDim: Int, headDimV: Int) -> Bool {
    guard runs(on: arch) else { return false }
    return self != .cpAsyncLines || max(DecodeKey.padded(headDim), DecodeKey.padded(headDimV)) <= 128
  }

  /// The loader a call gets: the cp.async loaders as they are (the call checks already require
  /// what they need); `bulk` where it runs on `arch` and the cache rows meet the bulk copy's
  /// rules (16-byte aligned global addresses, 16-byte multiple sizes: every row of the K and V
  /// caches, i.e. base addresses and row strides), `cpAsync` otherwise.
  /// - Parameters:
  ///   - headDims: (d, d_v); each row is 2·d bytes.
  ///   - caches: base address (bytes) and element strides of the K and V caches.
  package func effective(arch: String, headDims: (Int, Int), caches: [(address: UInt64, strides: [Int])]) -> DecodeLoader {
    if self != .bulk { return self }
    guard runs(on: arch) else { return .cpAsync }
    let sizesAligned = headDims.0 % 8 == 0 && headDims.1 % 8 == 0
    let rowsAligned = caches.allSatisfy { cache in
      cache.address % 16 == 0 && cache.strides.dropLast().allSatisfy { $0 % 8 == 0 } && cache.strides.last == 1
    }
    return sizesAligned && rowsAligned ? .bulk : .cpAsync
  }

  /// Bytes of shared memory beyond the ring and merge: one 8-byte mbarrier per stage per warp.
  func barrierBytes(tile: DecodeTile) -> Int {
    self == .bulk ? 8 * tile.warps * tile.stages : 0
  }
}
