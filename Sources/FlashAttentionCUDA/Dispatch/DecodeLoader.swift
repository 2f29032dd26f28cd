import FlashAttentionCore

/// How the decode kernel (`Kernels/decode/decode.cu`) moves K and V rows into shared memory.
/// A tuning choice (`--decode-loader`): both produce the same results bit for bit.
package enum DecodeLoader: String, Hashable, Sendable, CaseIterable {
  /// 16-byte `cp.async`, two lanes per key row (every architecture; the default).
  case cpAsync = "cpasync"
  /// Hopper bulk copies (`cp.async.bulk`), one per K or V row of a key, completing on an
  /// mbarrier per stage (sm_90 only; elsewhere the call falls back to `cpAsync`).
  case bulk

  /// Whether this loader can run on `arch` at all.
  package func runs(on arch: String) -> Bool {
    switch self {
    case .cpAsync: return true
    case .bulk: return arch.hasPrefix("sm_90")
    }
  }

  /// The loader a call gets: `self` where it runs on `arch` and the cache rows meet the bulk
  /// copy's rules (16-byte aligned global addresses, 16-byte multiple sizes: every row of the
  /// K and V caches, i.e. base addresses and row strides), `cpAsync` otherwise.
  /// - Parameters:
  ///   - headDims: (d, d_v); each row is 2·d bytes.
  ///   - caches: base address (bytes) and element strides of the K and V caches.
  package func effective(arch: String, headDims: (Int, Int), caches: [(address: UInt64, strides: [Int])]) -> DecodeLoader {
    guard self == .bulk, runs(on: arch) else { return .cpAsync }
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
