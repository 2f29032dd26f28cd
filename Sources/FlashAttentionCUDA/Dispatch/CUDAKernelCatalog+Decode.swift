import FlashAttentionCore

extension CUDAKernelCatalog {
  /// The KV-cache kernels on `arch`: the decode kernel for every head-dim pair of the
  /// FlashAttention-2 catalog with the table's tile for few, 16 and many packed rows (the
  /// swapped 8-row tile, one and two m16 tiles), bf16 contiguous without masks and fp16 paged with masking and softcap (the
  /// most registers; `exhaustive` crosses every dtype, flag and layout), the same again with each
  /// other loader that runs on `arch` (line-coalesced cp.async everywhere, bulk copies on sm_90,
  /// with its own tile: the barriers take shared memory), the split merge per value head dim and
  /// dtype, the append, and the decode benchmark's L2 sweep.
  package static func decodeKeys(arch: String, exhaustive: Bool = false) -> [any CUDAKernelKey] {
    let flagSets: [(DType, Bool, Bool, Bool)] =
      exhaustive
      ? [DType.float16, .bfloat16].flatMap { dtype in
        [false, true].flatMap { masked in
          [false, true].flatMap { softcap in [false, true].map { paged in (dtype, masked, softcap, paged) } }
        }
      }
      : [(.bfloat16, false, false, false), (.float16, true, true, true)]
    var keys: [any CUDAKernelKey] = []
    for loader in DecodeLoader.allCases where loader.runs(on: arch) {
      for (d, dv) in flashAttention2HeadDims where loader.applies(arch: arch, headDim: d, headDimV: dv) {
        let tiles = Set(
          [1, 16, 32].map { TileTables.decodeTile(headDim: d, headDimV: dv, rows: $0, arch: arch, loader: loader) })
        for tile in tiles.sorted(by: { $0.rows < $1.rows }) {
          for (dtype, masked, softcap, paged) in flagSets {
            keys.append(
              DecodeKey(
                headDim: d, headDimV: dv, dtype: dtype, masked: masked, softcap: softcap, paged: paged, tile: tile,
                arch: arch, loader: loader))
          }
        }
      }
    }
    for dv in Set(flashAttention2HeadDims.map(\.1)).sorted() {
      for dtype in [DType.bfloat16, .float16] { keys.append(DecodeCombineKey(headDimV: dv, dtype: dtype)) }
    }
    keys.append(KVAppendKey())
    keys.append(L2SweepKey(arch: arch))
    return keys
  }
}
