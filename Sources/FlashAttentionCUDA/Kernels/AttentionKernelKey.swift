import FlashAttentionCore

/// Tile sizes of one kernel variant: query rows per CTA (forward: 16 · m-tiles per warp),
/// keys per CTA or step, warps, and whether each warp keeps its Q fragments in registers
/// (forward with one m-tile per warp and d ≤ 128 only).
public struct AttentionTile: Hashable, Sendable, CustomStringConvertible {
  public var blockM: Int
  public var blockN: Int
  public var warps: Int
  public var qInRegisters: Bool

  public init(blockM: Int, blockN: Int, warps: Int, qInRegisters: Bool) {
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.qInRegisters = qInRegisters
  }

  public var description: String {
    "\(blockM)x\(blockN)/\(warps)w" + (qInRegisters ? "/qreg" : "")
  }

  /// Parses a forward tile `BMxBNxWARPS` (e.g. `128x64x4`); Q stays in registers when each
  /// warp has one m16 tile and the head is at most 128 wide.
  public static func forward(parsing text: String, headDim: Int, headDimV: Int) -> AttentionTile? {
    let parts = text.split(separator: "x").compactMap { Int($0) }
    guard parts.count == 3, parts[2] > 0, parts[0] % (16 * parts[2]) == 0, parts[1] % 16 == 0, parts[1] > 0 else { return nil }
    let width = max(AttentionKernelKey.paddedTo16(headDim), AttentionKernelKey.paddedTo16(headDimV))
    return AttentionTile(blockM: parts[0], blockN: parts[1], warps: parts[2], qInRegisters: parts[0] == 16 * parts[2] && width <= 128)
  }

  /// Parses a backward key/value tile `BMxWARPS` (BM queries per step, 16 keys per warp).
  public static func backward(parsing text: String) -> AttentionTile? {
    let parts = text.split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts[0] % 16 == 0, parts[0] > 0, parts[1] > 0 else { return nil }
    return AttentionTile(blockM: parts[0], blockN: 16 * parts[1], warps: parts[1], qInRegisters: false)
  }
}

/// Tile choices that replace the built-in table (for tuning runs); nil keeps the table.
public struct CUDAKernelTuning: Sendable, Hashable {
  public var forwardTile: AttentionTile?
  /// Applies to head dims up to 128 (single-pass backward).
  public var backwardTile: AttentionTile?

  public init(forwardTile: AttentionTile? = nil, backwardTile: AttentionTile? = nil) {
    self.forwardTile = forwardTile
    self.backwardTile = backwardTile
  }
}

/// Everything that selects one compiled attention kernel; problem sizes (sequence lengths,
/// batch, heads, strides) are kernel arguments, so one compile serves every size.
public struct AttentionKernelKey: Hashable, Sendable, CustomStringConvertible {
  public enum Kind: String, Sendable, CaseIterable {
    case forward
    /// D = rowsum(dO ∘ O) and the LSE in log2 units, per query row.
    case backwardPreprocess
    /// dK and dV for one key block, and dQ added into an fp32 accumulator.
    case backwardKeyValue
    /// dQ accumulator × scale → storage dtype.
    case backwardConvert
  }

  public var kind: Kind
  public var headDim: Int
  public var headDimV: Int
  /// `.float16` or `.bfloat16` (fp32 inputs are converted on the device first).
  public var dtype: DType
  /// Causal or sliding window: per-row key ranges and whole-tile skipping.
  public var masked: Bool
  public var softcap: Bool
  /// Backward only: dQ accumulated by one CTA per query block instead of atomics.
  public var deterministic: Bool
  public var tile: AttentionTile
  /// `backwardKeyValue` only: 0 computes dK, dV and dQ together; for wide heads whose dK and dV
  /// accumulators do not fit in registers together, pass 1 computes dV and pass 2 dK and dQ.
  public var pass: Int = 0
  public var arch: String

  public var description: String {
    var text = "\(kind.rawValue) d=\(headDim)"
    if headDimV != headDim { text += " dv=\(headDimV)" }
    text += " \(dtype == .bfloat16 ? "bf16" : "fp16") \(tile)"
    if masked { text += " masked" }
    if softcap { text += " softcap" }
    if deterministic { text += " deterministic" }
    if pass > 0 { text += " pass\(pass)" }
    return text + " \(arch)"
  }

  /// The head dims the kernels support: every multiple of 8 up to 256.
  public static func supportsHeadDim(_ value: Int) -> Bool {
    value >= 8 && value <= 256 && value % 8 == 0
  }

  static func paddedTo16(_ value: Int) -> Int { (value + 15) / 16 * 16 }

  /// The forward tile for a head-dim bucket (the larger of d and d_v decides the registers).
  /// Measured on the H100 (run 3, N=8k, docs/perf-notes/cuda-sm80.md): 4 warps with two m16
  /// tiles each (every K/V fragment feeds two MMAs) beat 8 warps of one tile by 30% at d=64.
  /// At d=128 two tiles per warp measured faster still but spill 40 bytes on sm_90a, so d=128
  /// keeps one tile per warp (Q in registers) on 4 warps, as do wider heads.
  public static func forwardTile(headDim: Int, headDimV: Int) -> AttentionTile {
    let width = max(paddedTo16(headDim), paddedTo16(headDimV))
    if width <= 112 { return AttentionTile(blockM: 128, blockN: 64, warps: 4, qInRegisters: false) }
    return AttentionTile(blockM: 64, blockN: 64, warps: 4, qInRegisters: width <= 128)
  }

  /// Dynamic shared memory of the forward kernel: Q, K and V tiles with 16-byte padded rows.
  public var sharedMemoryBytes: Int {
    let qkPitch = Self.paddedTo16(headDim) + 8
    let vPitch = Self.paddedTo16(headDimV) + 8
    switch kind {
    case .forward:
      return (tile.blockM * qkPitch + tile.blockN * qkPitch + tile.blockN * vPitch) * 2
    case .backwardKeyValue:
      // K, V (blockN keys), two buffers of Q and dO (blockM queries), dS^T, then two buffers
      // of LSE and D as floats.
      let halves = tile.blockN * (qkPitch + vPitch) + 2 * tile.blockM * (qkPitch + vPitch) + tile.blockN * (tile.blockM + 8)
      return halves * 2 + 4 * tile.blockM * 4
    case .backwardPreprocess, .backwardConvert:
      return 0
    }
  }

  public var threads: Int { tile.warps * 32 }

  /// The NVRTC program: the feature `#define`s, then the shared primitives, then the kernel.
  public var program: CUDAProgram {
    let body: String
    let entry: String
    switch kind {
    case .forward:
      body = KernelSource.forward
      entry = "flash_forward"
    case .backwardPreprocess:
      body = KernelSource.backward
      entry = "flash_backward_preprocess"
    case .backwardKeyValue:
      body = KernelSource.backward
      entry = "flash_backward_kv"
    case .backwardConvert:
      body = KernelSource.backward
      entry = "flash_backward_convert_dq"
    }
    var defines = [
      "FA_D \(headDim)", "FA_DV \(headDimV)", "FA_BM \(tile.blockM)", "FA_BN \(tile.blockN)",
      "FA_WARPS \(tile.warps)", "FA_BF16 \(dtype == .bfloat16 ? 1 : 0)",
      "FA_CAUSAL_OR_WINDOW \(masked ? 1 : 0)", "FA_SOFTCAP \(softcap ? 1 : 0)",
      "FA_Q_IN_REGS \(tile.qInRegisters ? 1 : 0)", "FA_DETERMINISTIC \(deterministic ? 1 : 0)", "FA_BWD_PASS \(pass)",
    ]
    defines.append("FA_ENTRY_\(entry) 1")
    defines.sort()
    let header = defines.map { "#define \($0)\n" }.joined()
    return CUDAProgram(entry: entry, source: header + KernelSource.common + body)
  }
}

extension AttentionKernelKey {
  /// The key with the tile table's choice for `kind` and the head dims.
  public static func make(
    kind: Kind, headDim: Int, headDimV: Int, dtype: DType, masked: Bool, softcap: Bool,
    deterministic: Bool, pass: Int = 0, arch: String, tuning: CUDAKernelTuning = CUDAKernelTuning()
  ) -> AttentionKernelKey {
    switch kind {
    case .forward:
      return AttentionKernelKey(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked, softcap: softcap,
        deterministic: deterministic, tile: tuned(tuning.forwardTile, headDim: headDim, headDimV: headDimV)
          ?? forwardTile(headDim: headDim, headDimV: headDimV),
        arch: arch)
    case .backwardKeyValue:
      let singlePass = backwardPasses(headDim: headDim, headDimV: headDimV) == [0]
      let tile = singlePass ? tuning.backwardTile : nil
      return AttentionKernelKey(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: masked, softcap: softcap,
        deterministic: deterministic, tile: tile ?? backwardTile(headDim: headDim, headDimV: headDimV, pass: pass),
        pass: pass, arch: arch)
    case .backwardPreprocess, .backwardConvert:
      // Elementwise kernels: only the head dims and the dtype matter.
      return AttentionKernelKey(
        kind: kind, headDim: headDim, headDimV: headDimV, dtype: dtype, masked: false, softcap: false,
        deterministic: false, tile: AttentionTile(blockM: 0, blockN: 0, warps: kind == .backwardConvert ? 8 : 4, qInRegisters: false),
        arch: arch)
    }
  }

  /// A forward tile override with Q-in-registers decided for these head dims.
  static func tuned(_ tile: AttentionTile?, headDim: Int, headDimV: Int) -> AttentionTile? {
    guard var tile else { return nil }
    let width = max(paddedTo16(headDim), paddedTo16(headDimV))
    tile.qInRegisters = tile.blockM == 16 * tile.warps && width <= 128
    return tile
  }

  /// Whether the backward pass of these head dims runs as two key/value passes.
  public static func backwardPasses(headDim: Int, headDimV: Int) -> [Int] {
    max(paddedTo16(headDim), paddedTo16(headDimV)) <= 128 ? [0] : [1, 2]
  }

  /// The backward key/value tile: 16 keys per warp (blockN), blockM queries per step. Sizes
  /// chosen so that no variant spills (see docs/perf-notes/cuda-sm80.md).
  public static func backwardTile(headDim: Int, headDimV: Int, pass: Int) -> AttentionTile {
    let width = max(paddedTo16(headDim), paddedTo16(headDimV))
    // d <= 64: 4 warps (two CTAs per SM) measured 7-11% faster than 8 (run 2); d <= 128: 8.
    if width <= 64 { return AttentionTile(blockM: 32, blockN: 64, warps: 4, qInRegisters: false) }
    if width <= 128 { return AttentionTile(blockM: 32, blockN: 128, warps: 8, qInRegisters: false) }
    let blockM = pass == 2 && paddedTo16(headDim) > 224 ? 16 : 32
    return AttentionTile(blockM: blockM, blockN: 64, warps: 4, qInRegisters: false)
  }
}
