import FlashAttentionCore

/// The kernel variants that `flash-attention kernels` and the CI compile test build.
public enum AttentionKernelCatalog {
  /// Head dims (d, d_v) covering every tile bucket, a d that is not a multiple of 16, and
  /// d_v ≠ d.
  public static let headDims: [(Int, Int)] = [
    (8, 8), (40, 40), (64, 64), (96, 96), (128, 128), (160, 160), (192, 192), (192, 128), (256, 256),
  ]

  /// One key per kernel kind and head dim: bf16 without masks, and fp16 with masking and
  /// softcap (the most registers). `exhaustive` crosses every dtype and flag instead.
  public static func keys(arch: String, exhaustive: Bool = false) -> [AttentionKernelKey] {
    var keys: [AttentionKernelKey] = []
    let flagSets: [(DType, Bool, Bool)] =
      exhaustive
      ? [DType.float16, .bfloat16].flatMap { dtype in
        [(dtype, false, false), (dtype, true, false), (dtype, false, true), (dtype, true, true)]
      }
      : [(.bfloat16, false, false), (.float16, true, true)]
    for (d, dv) in headDims {
      for (dtype, masked, softcap) in flagSets {
        keys += variants(headDim: d, headDimV: dv, dtype: dtype, masked: masked, softcap: softcap, arch: arch)
      }
    }
    return keys
  }

  /// Every kernel a forward + backward call with these features would use.
  public static func variants(
    headDim: Int, headDimV: Int, dtype: DType, masked: Bool, softcap: Bool, arch: String
  ) -> [AttentionKernelKey] {
    AttentionKernelKey.Kind.allCases.map { kind in
      AttentionKernelKey.make(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked, softcap: softcap,
        deterministic: false, arch: arch)
    }
  }
}
